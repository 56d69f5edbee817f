package main

// The cluster as a test case changes it, step by step, without a cluster: the same bookkeeping as
// cyclonus's connectivity.TestCaseState, minus the API calls, so the matcher sees exactly the
// policies and labels that a live cyclonus run would feed it.

import (
	"fmt"

	"github.com/mattfenwick/cyclonus/pkg/connectivity/probe"
	"github.com/mattfenwick/cyclonus/pkg/generator"
	networkingv1 "k8s.io/api/networking/v1"
)

type caseState struct {
	model     *probeModel
	resources *probe.Resources
	policies  []*networkingv1.NetworkPolicy
}

func (s *caseState) policyIndex(ns, name string) int {
	for i, p := range s.policies {
		if p.Namespace == ns && p.Name == name {
			return i
		}
	}
	return -1
}

// apply performs one action and returns its JSON form (the object to send, or the labels to set).
func (s *caseState) apply(a *generator.Action) (actionJSON, error) {
	switch {
	case a.CreatePolicy != nil:
		p := a.CreatePolicy.Policy
		if s.policyIndex(p.Namespace, p.Name) >= 0 {
			return nil, fmt.Errorf("create policy %s/%s: already exists", p.Namespace, p.Name)
		}
		s.policies = append(s.policies, p)
		return policyAction("create-policy", p)
	case a.UpdatePolicy != nil:
		p := a.UpdatePolicy.Policy
		i := s.policyIndex(p.Namespace, p.Name)
		if i < 0 {
			return nil, fmt.Errorf("update policy %s/%s: not found", p.Namespace, p.Name)
		}
		s.policies[i] = p
		return policyAction("update-policy", p)
	case a.DeletePolicy != nil:
		return s.deletePolicy(a.DeletePolicy.Namespace, a.DeletePolicy.Name)
	case a.CreateNamespace != nil, a.SetNamespaceLabels != nil, a.DeleteNamespace != nil:
		return s.applyNamespace(a)
	case a.CreatePod != nil, a.SetPodLabels != nil, a.DeletePod != nil:
		return s.applyPod(a)
	}
	// ReadNetworkPolicies reads back from a live cluster: no generated case uses it, and offline
	// there is nothing to read.
	return nil, fmt.Errorf("action %+v cannot be simulated offline", *a)
}

func (s *caseState) deletePolicy(ns, name string) (actionJSON, error) {
	i := s.policyIndex(ns, name)
	if i < 0 {
		return nil, fmt.Errorf("delete policy %s/%s: not found", ns, name)
	}
	s.policies = append(append([]*networkingv1.NetworkPolicy{}, s.policies[:i]...), s.policies[i+1:]...)
	return actionJSON{"kind": "delete-policy", "namespace": ns, "name": name}, nil
}

func (s *caseState) applyNamespace(a *generator.Action) (actionJSON, error) {
	var err error
	var r *probe.Resources
	switch {
	case a.CreateNamespace != nil:
		ns, labels := a.CreateNamespace.Namespace, withDefaultLabel(a.CreateNamespace.Namespace, a.CreateNamespace.Labels)
		if r, err = s.resources.CreateNamespace(ns, labels); err == nil {
			s.resources = r
		}
		return actionJSON{"kind": "create-namespace", "namespace": ns, "labels": labels}, err
	case a.SetNamespaceLabels != nil:
		ns, labels := a.SetNamespaceLabels.Namespace, withDefaultLabel(a.SetNamespaceLabels.Namespace, a.SetNamespaceLabels.Labels)
		if r, err = s.resources.UpdateNamespaceLabels(ns, labels); err == nil {
			s.resources = r
		}
		return actionJSON{"kind": "set-namespace-labels", "namespace": ns, "labels": labels}, err
	default:
		ns := a.DeleteNamespace.Namespace
		if r, err = s.resources.DeleteNamespace(ns); err == nil {
			s.resources = r
		}
		return actionJSON{"kind": "delete-namespace", "namespace": ns}, err
	}
}

func (s *caseState) applyPod(a *generator.Action) (actionJSON, error) {
	var err error
	var r *probe.Resources
	switch {
	case a.CreatePod != nil:
		ns, name, labels := a.CreatePod.Namespace, a.CreatePod.Pod, a.CreatePod.Labels
		ip, ok := s.model.CreatedPodIPs[ns+"/"+name]
		if !ok {
			return nil, fmt.Errorf("create pod %s/%s: the probe model's createdPodIPs has no address for %q", ns, name, ns+"/"+name)
		}
		// cyclonus gives a created pod the first pod's containers (probe.Resources.CreatePod).
		if r, err = s.resources.CreatePod(ns, name, labels); err != nil {
			return nil, err
		}
		s.resources = r
		pod, _ := r.GetPod(ns, name)
		pod.IP = ip
		return actionJSON{"kind": "create-pod", "namespace": ns, "pod": name, "labels": labels, "ip": ip,
			"containers": containersJSON(pod.Containers)}, nil
	case a.SetPodLabels != nil:
		ns, name, labels := a.SetPodLabels.Namespace, a.SetPodLabels.Pod, a.SetPodLabels.Labels
		if r, err = s.resources.SetPodLabels(ns, name, labels); err == nil {
			s.resources = r
		}
		return actionJSON{"kind": "set-pod-labels", "namespace": ns, "pod": name, "labels": labels}, err
	default:
		ns, name := a.DeletePod.Namespace, a.DeletePod.Pod
		if r, err = s.resources.DeletePod(ns, name); err == nil {
			s.resources = r
		}
		return actionJSON{"kind": "delete-pod", "namespace": ns, "pod": name}, err
	}
}
