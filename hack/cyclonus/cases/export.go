package main

// Turns generated test cases into JSON: per step the actions, the cluster state after them, and
// the truth table cyclonus's own job builder and matcher compute for that state.

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/mattfenwick/cyclonus/pkg/connectivity/probe"
	"github.com/mattfenwick/cyclonus/pkg/generator"
	"github.com/mattfenwick/cyclonus/pkg/matcher"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type actionJSON map[string]any

type cellJSON struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	PortName string `json:"portName"`
	// allowed | denied, or invalid-named-port / invalid-port-protocol when the destination pod
	// does not serve what the step probes (no traffic to compare; cyclonus skips the probe).
	Verdict string `json:"verdict"`
	Ingress string `json:"ingress,omitempty"`
	Egress  string `json:"egress,omitempty"`
}

type podJSON struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
	IP        string            `json:"ip"`
}

type stepJSON struct {
	Probe      map[string]any               `json:"probe"`
	Actions    []actionJSON                 `json:"actions"`
	Namespaces map[string]map[string]string `json:"namespaces"`
	Pods       []podJSON                    `json:"pods"`
	Policies   []string                     `json:"policies"`
	TruthTable []cellJSON                   `json:"truthTable"`
}

type caseJSON struct {
	Index       int        `json:"index"`
	Description string     `json:"description"`
	Tags        []string   `json:"tags"`
	Steps       []stepJSON `json:"steps"`
}

// policyAction renders a policy as the Kubernetes object a client sends: apiVersion and kind set,
// and none of the empty fields Go's encoder adds (metadata.creationTimestamp: null).
func policyAction(kind string, p *networkingv1.NetworkPolicy) (actionJSON, error) {
	c := p.DeepCopy()
	c.APIVersion, c.Kind = "networking.k8s.io/v1", "NetworkPolicy"
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	return actionJSON{"kind": kind, "policy": obj}, nil
}

func containersJSON(cs []*probe.Container) []modelContainer {
	out := []modelContainer{}
	for _, c := range cs {
		out = append(out, modelContainer{Name: c.Name, Port: c.Port, Protocol: string(c.Protocol), PortName: c.PortName})
	}
	return out
}

func probeJSON(pc *generator.ProbeConfig) map[string]any {
	out := map[string]any{"mode": string(pc.Mode)}
	if pc.AllAvailable {
		out["allAvailable"] = true
		return out
	}
	out["protocol"] = string(pc.PortProtocol.Protocol)
	if pc.PortProtocol.Port.Type == intstr.String {
		out["port"] = pc.PortProtocol.Port.StrVal
	} else {
		out["port"] = pc.PortProtocol.Port.IntValue()
	}
	return out
}

func verdict(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

func jobCell(j *probe.Job, v string) cellJSON {
	return cellJSON{From: j.FromKey, To: j.ToKey, Protocol: string(j.Protocol), Port: j.ResolvedPort,
		PortName: j.ResolvedPortName, Verdict: v}
}

// truthTable is what cyclonus's SimulatedJobRunner computes, cell by cell, in a stable order.
func truthTable(s *caseState, pc *generator.ProbeConfig) []cellJSON {
	policy := matcher.BuildNetworkPolicies(true, s.policies)
	jobs := (&probe.JobBuilder{}).GetJobsForProbeConfig(s.resources, pc)
	cells := []cellJSON{}
	for _, j := range jobs.Valid {
		r := policy.IsTrafficAllowed(j.Traffic())
		c := jobCell(j, verdict(r.IsAllowed()))
		c.Ingress, c.Egress = verdict(r.Ingress.IsAllowed()), verdict(r.Egress.IsAllowed())
		cells = append(cells, c)
	}
	for _, j := range jobs.BadNamedPort {
		cells = append(cells, jobCell(j, "invalid-named-port"))
	}
	for _, j := range jobs.BadPortProtocol {
		cells = append(cells, jobCell(j, "invalid-port-protocol"))
	}
	sort.SliceStable(cells, func(a, b int) bool {
		x, y := cells[a], cells[b]
		if x.From != y.From {
			return x.From < y.From
		}
		if x.To != y.To {
			return x.To < y.To
		}
		if x.Protocol != y.Protocol {
			return x.Protocol < y.Protocol
		}
		return x.Port < y.Port
	})
	return cells
}

func snapshot(s *caseState, st *stepJSON) {
	st.Namespaces = s.resources.Namespaces
	st.Pods = []podJSON{}
	for _, p := range s.resources.Pods {
		labels := p.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		st.Pods = append(st.Pods, podJSON{Namespace: p.Namespace, Name: p.Name, Labels: labels, IP: p.IP})
	}
	st.Policies = []string{}
	for _, p := range s.policies {
		st.Policies = append(st.Policies, p.Namespace+"/"+p.Name)
	}
}

func exportCase(m *probeModel, index int, tc *generator.TestCase) (*caseJSON, error) {
	out := &caseJSON{Index: index, Description: tc.Description, Tags: tc.Tags.Keys(), Steps: []stepJSON{}}
	s := &caseState{model: m, resources: m.resources()}
	for i, step := range tc.Steps {
		st := stepJSON{Probe: probeJSON(step.Probe), Actions: []actionJSON{}}
		for _, a := range step.Actions {
			aj, err := s.apply(a)
			if err != nil {
				return nil, fmt.Errorf("case %d %q, step %d: %w", index, tc.Description, i+1, err)
			}
			st.Actions = append(st.Actions, aj)
		}
		snapshot(s, &st)
		st.TruthTable = truthTable(s, step.Probe)
		out.Steps = append(out.Steps, st)
	}
	return out, nil
}
