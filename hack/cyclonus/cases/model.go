package main

// The probe model: what the lab really runs (namespaces, pods, their IPs and serving ports), read
// from JSON so the oracle computes its truth tables for the lab's own addresses rather than for a
// cluster it would have to create. cyclonus's own CLI can only learn this from a live API server.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/mattfenwick/cyclonus/pkg/connectivity/probe"
	"github.com/mattfenwick/cyclonus/pkg/kube"
	v1 "k8s.io/api/core/v1"
)

type modelContainer struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	PortName string `json:"portName"`
}

type modelPod struct {
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels"`
	IP         string            `json:"ip"`
	Containers []modelContainer  `json:"containers,omitempty"`
}

type probeModel struct {
	Namespaces map[string]map[string]string `json:"namespaces"`
	Pods       []modelPod                   `json:"pods"`
	// Ports x protocols give the containers of a pod that lists none, named as cyclonus names
	// them (serve-80-tcp), because the generated cases refer to those names.
	Ports     []int    `json:"ports,omitempty"`
	Protocols []string `json:"protocols,omitempty"`
	// Pods that a case creates ("x/d") do not exist when the model is written, but the matcher
	// needs their address for ipBlock peers: the lab says which address it will give each.
	CreatedPodIPs map[string]string `json:"createdPodIPs,omitempty"`
}

func readModel(r io.Reader) (*probeModel, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	m := &probeModel{}
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("probe model: %w", err)
	}
	return m, m.validate()
}

// isIPv4: cyclonus's ipBlock generator (kube.MakeCIDRFromZeroes) handles IPv4 only.
func isIPv4(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.To4() != nil
}

func parseProtocol(s string) (v1.Protocol, error) {
	switch p := v1.Protocol(strings.ToUpper(s)); p {
	case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
		return p, nil
	}
	return "", fmt.Errorf("protocol %q is not TCP, UDP or SCTP", s)
}

func (m *probeModel) validate() error {
	if len(m.Namespaces) == 0 || len(m.Pods) == 0 {
		return fmt.Errorf("probe model: needs at least one namespace and one pod")
	}
	for _, p := range m.Protocols {
		if _, err := parseProtocol(p); err != nil {
			return fmt.Errorf("probe model: protocols: %w", err)
		}
	}
	seen := map[string]bool{}
	for i, p := range m.Pods {
		where := fmt.Sprintf("probe model: pods[%d] (%s/%s)", i, p.Namespace, p.Name)
		if _, ok := m.Namespaces[p.Namespace]; !ok {
			return fmt.Errorf("%s: namespace %q is not in namespaces", where, p.Namespace)
		}
		if p.Name == "" || seen[p.Namespace+"/"+p.Name] {
			return fmt.Errorf("%s: name is empty or repeated", where)
		}
		seen[p.Namespace+"/"+p.Name] = true
		if !isIPv4(p.IP) {
			return fmt.Errorf("%s: ip %q is not an IPv4 address", where, p.IP)
		}
		if len(p.Containers) == 0 && (len(m.Ports) == 0 || len(m.Protocols) == 0) {
			return fmt.Errorf("%s: no containers, and the model has no ports and protocols to default them", where)
		}
		for j, c := range p.Containers {
			if _, err := parseProtocol(c.Protocol); err != nil || c.Port < 1 || c.Port > 65535 || c.PortName == "" {
				return fmt.Errorf("%s: containers[%d]: needs a port 1-65535, a portName and a protocol TCP, UDP or SCTP", where, j)
			}
		}
	}
	for key, ip := range m.CreatedPodIPs {
		if !isIPv4(ip) {
			return fmt.Errorf("probe model: createdPodIPs[%q]: %q is not an IPv4 address", key, ip)
		}
	}
	return nil
}

// withDefaultLabel adds the label the API server puts on every namespace and keeps immutable, so
// that the oracle sees namespaces as a real cluster has them even when a case replaces the labels.
func withDefaultLabel(ns string, labels map[string]string) map[string]string {
	out := map[string]string{kube.DefaultNamespaceLabel: ns}
	for k, v := range labels {
		if k != kube.DefaultNamespaceLabel {
			out[k] = v
		}
	}
	return out
}

func (m *probeModel) containers(p modelPod) []*probe.Container {
	var out []*probe.Container
	for _, c := range p.Containers {
		proto, _ := parseProtocol(c.Protocol)
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("cont-%d-%s", c.Port, strings.ToLower(string(proto)))
		}
		out = append(out, &probe.Container{Name: name, Port: c.Port, Protocol: proto, PortName: c.PortName})
	}
	if len(out) > 0 {
		return out
	}
	for _, port := range m.Ports {
		for _, s := range m.Protocols {
			proto, _ := parseProtocol(s)
			out = append(out, probe.NewDefaultContainer(port, proto, false, ""))
		}
	}
	return out
}

// resources turns the model into cyclonus's own probe.Resources, the state its job builder and
// matcher read.
func (m *probeModel) resources() *probe.Resources {
	r := &probe.Resources{Namespaces: map[string]map[string]string{}}
	for ns, labels := range m.Namespaces {
		r.Namespaces[ns] = withDefaultLabel(ns, labels)
	}
	pods := append([]modelPod{}, m.Pods...)
	sort.SliceStable(pods, func(i, j int) bool {
		return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name
	})
	for _, p := range pods {
		r.Pods = append(r.Pods, probe.NewPod(p.Namespace, p.Name, p.Labels, p.IP, m.containers(p)))
	}
	return r
}
