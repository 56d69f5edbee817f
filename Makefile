# Ferry — the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
NODE := scripts/node
NODE_TEST := $(NODE) --test --test-reporter=spec --test-timeout=600000

BPF_CFLAGS := -target bpf -O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -I build/bpf -I bpf
BPF_SRC := $(wildcard bpf/*.c bpf/test/*.c)
BPF_OBJ := $(patsubst bpf/%.c,build/bpf/%.o,$(BPF_SRC))
BPF_HDR := $(wildcard bpf/lib/*.h)

BENCHES := $(sort $(basename $(notdir $(wildcard bench/*.ts))))

.PHONY: setup demo test check typecheck lint format bpf clean bench $(addprefix bench-,$(BENCHES)) \
	test-unit test-kernel test-fault test-lab test-k8s

setup:
	@bash scripts/setup.sh

demo: setup
	bin/ferry demo

# Every tier, cheapest first, so a broken model fails before the lab is built.
test: setup check test-unit test-kernel test-fault test-lab test-k8s

check: typecheck lint

typecheck:
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p .

lint:
	$(NODE) node_modules/eslint/bin/eslint.js --max-warnings 0 .

format:
	$(NODE) node_modules/prettier/bin/prettier.cjs --write .

test-unit:
	$(NODE_TEST) 'test/unit/**/*.test.ts'

test-kernel: bpf
	$(NODE_TEST) 'test/kernel/**/*.test.ts'

# Fault injection: bad files, full disks, racing CNI calls, odd flags, dead agents (issue #12).
test-fault: bpf
	$(NODE_TEST) 'test/fault/**/*.test.ts'

test-lab: bpf
	$(NODE_TEST) 'test/lab/**/*.test.ts'

# A real etcd + kube-apiserver + kube-controller-manager on loopback; the first run builds them
# (cached outside the repo by version, see hack/k8s/build.sh).
# One file at a time: each starts its own control plane, and the disruption test's timing assumes
# the machine is not also running three others.
test-k8s:
	bash hack/k8s/build.sh
	$(NODE_TEST) --test-concurrency=1 'test/k8s/**/*.test.ts'

bench: $(addprefix bench-,$(BENCHES))

$(addprefix bench-,$(BENCHES)): bench-%: setup
	$(NODE) bench/$*.ts

# vmlinux.h is generated from the running kernel's BTF rather than committed: it is several MB,
# CO-RE relocations make the objects portable anyway, and every machine we run on exposes BTF.
build/bpf/vmlinux.h:
	@mkdir -p $(@D)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

build/bpf/%.o: bpf/%.c $(BPF_HDR) build/bpf/vmlinux.h
	@mkdir -p $(@D)
	clang $(BPF_CFLAGS) -c $< -o $@

bpf: $(BPF_OBJ)

clean:
	rm -rf build

# cyclonus, the NetworkPolicy conformance oracle (issue #14): `cyclonus` builds its case exporter
# (cached outside the repo, see hack/cyclonus/build.sh); `cyclonus-cases` prints how many generated
# cases carry each tag, for the upstream probe model.
.PHONY: cyclonus cyclonus-cases
cyclonus:
	bash hack/cyclonus/build.sh >/dev/null

cyclonus-cases:
	@bin="$$(bash hack/cyclonus/build.sh)" && "$$bin" -model hack/cyclonus/upstream-model.json -counts
