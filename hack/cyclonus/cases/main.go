// cyclonus-cases exports cyclonus's generated NetworkPolicy test cases, and the truth table that
// cyclonus's own matcher expects after every step, as JSON, for a probe model the caller supplies.
// It is Ferry's conformance oracle (issue #14): the cyclonus CLI computes these tables only while
// driving a live cluster, so this program imports cyclonus as a library and runs the same code
// (generator, probe.JobBuilder, matcher) offline.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/mattfenwick/cyclonus/pkg/generator"
	"github.com/sirupsen/logrus"
)

const cyclonusVersion = "v0.5.6"

type options struct {
	model      string
	include    []string
	exclude    []string
	limit      int
	allowDNS   bool
	ipBlockPod string
	counts     bool
}

func splitTags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("cyclonus-cases", flag.ContinueOnError)
	fs.StringVar(&o.model, "model", "-", "probe model JSON file, - for stdin")
	include := fs.String("include", "", "comma-separated tags: keep cases with any of them (default all)")
	exclude := fs.String("exclude", "", "comma-separated tags: drop cases with any of them")
	fs.IntVar(&o.limit, "limit", 0, "at most this many cases (0: no limit), after tag selection")
	fs.BoolVar(&o.allowDNS, "allow-dns", true, "egress cases also allow port 53, as cyclonus generate does by default")
	fs.StringVar(&o.ipBlockPod, "ip-block-pod", "z/c", "namespace/pod whose IP the ipBlock cases' CIDRs are built from (cyclonus uses z/c)")
	fs.BoolVar(&o.counts, "counts", false, "print the number of selected cases per tag instead of the cases")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.include, o.exclude = splitTags(*include), splitTags(*exclude)
	if err := generator.ValidateTags(append(append([]string{}, o.include...), o.exclude...)); err != nil {
		return nil, fmt.Errorf("%w (known tags: %s)", err, strings.Join(generator.TagSlice, ", "))
	}
	if o.limit < 0 {
		return nil, fmt.Errorf("-limit must be >= 0")
	}
	return o, nil
}

func loadModel(path string) (*probeModel, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	return readModel(r)
}

func selectCases(o *options, m *probeModel) ([]indexedCase, error) {
	var ipPod *modelPod
	for i := range m.Pods {
		if m.Pods[i].Namespace+"/"+m.Pods[i].Name == o.ipBlockPod {
			ipPod = &m.Pods[i]
		}
	}
	if ipPod == nil {
		return nil, fmt.Errorf("-ip-block-pod %s: no such pod in the probe model", o.ipBlockPod)
	}
	var namespaces []string
	for ns := range m.Namespaces {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	gen := generator.NewTestCaseGenerator(o.allowDNS, ipPod.IP, namespaces, o.include, o.exclude)
	// GenerateTestCases's own filter, kept here so each case keeps its index in the whole corpus:
	// a stable name for a case whatever tags select it.
	var cases []indexedCase
	for i, tc := range gen.GenerateAllTestCases() {
		if (len(o.include) == 0 || tc.Tags.ContainsAny(o.include)) && !tc.Tags.ContainsAny(o.exclude) {
			cases = append(cases, indexedCase{i, tc})
		}
	}
	if o.limit > 0 && len(cases) > o.limit {
		cases = cases[:o.limit]
	}
	return cases, nil
}

type indexedCase struct {
	index int
	tc    *generator.TestCase
}

func run(args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	m, err := loadModel(o.model)
	if err != nil {
		return err
	}
	cases, err := selectCases(o, m)
	if err != nil {
		return err
	}
	var selected []*generator.TestCase
	for _, c := range cases {
		selected = append(selected, c.tc)
	}
	counts := generator.CountTestCasesByTag(selected)
	if o.counts {
		fmt.Fprintf(stdout, "%6d  (all cases)\n", len(cases))
		for _, tag := range generator.TagSlice {
			fmt.Fprintf(stdout, "%6d  %s\n", counts[tag], tag)
		}
		return nil
	}
	out := struct {
		Cyclonus    string         `json:"cyclonus"`
		CountsByTag map[string]int `json:"countsByTag"`
		Cases       []*caseJSON    `json:"cases"`
	}{cyclonusVersion, counts, []*caseJSON{}}
	for _, ic := range cases {
		c, err := exportCase(m, ic.index, ic.tc)
		if err != nil {
			return err
		}
		out.Cases = append(out.Cases, c)
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(out)
}

func main() {
	// The matcher logs at debug/trace level; stdout carries only the JSON.
	logrus.SetOutput(os.Stderr)
	logrus.SetLevel(logrus.WarnLevel)
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cyclonus-cases: %v\n", err)
		os.Exit(1)
	}
}
