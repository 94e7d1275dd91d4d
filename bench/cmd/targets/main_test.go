package main

import (
	"strings"
	"testing"
)

// sample is go test output trimmed to the benchmarks the targets read,
// two runs of each.
const sample = `mongotest: using ferretdb server mongodb://127.0.0.1:36597/ (ready in 317ms)
goos: linux
goarch: amd64
pkg: github.com/sessionstore/sessionstore/bench
BenchmarkCodec/msgpack/decode-2         	  249960	      4093 ns/op	       187.0 B/session	     632 B/op	      14 allocs/op
BenchmarkCodec/msgpack/decode-2         	  249960	      4100 ns/op	       187.0 B/session	     632 B/op	      14 allocs/op
BenchmarkGetHit-2                       	  213984	      4896 ns/op	     679 B/op	      15 allocs/op
BenchmarkGetHit-2                       	  213984	      4800 ns/op	     679 B/op	      15 allocs/op
BenchmarkGetHitParallel-2               	  359058	      2835 ns/op	     679 B/op	      15 allocs/op
BenchmarkGetHitParallel-2               	  359058	      2935 ns/op	     679 B/op	      15 allocs/op
BenchmarkBaselineLRUDecode-2            	  302413	      4293 ns/op	     631 B/op	      14 allocs/op
BenchmarkBaselineLRUDecode-2            	  302413	      4193 ns/op	     631 B/op	      14 allocs/op
BenchmarkDirectFindOne-2                	    1206	   1470602 ns/op	    7863 B/op	      87 allocs/op
BenchmarkDirectFindOne-2                	    1206	   1570602 ns/op	    7863 B/op	      87 allocs/op
BenchmarkGetMissCollapsed-2             	     300	   8777370 ns/op	         1.000 finds/op	        32.00 gets/op	   41797 B/op	     789 allocs/op
BenchmarkGetMissCollapsed-2             	     300	   8777370 ns/op	         1.000 finds/op	        32.00 gets/op	   41797 B/op	     789 allocs/op
BenchmarkMemoryBound-2                  	       2	 808645827 ns/op	       410.7 B/entry	     10000 L1-cap	     10000 L1-entries	       808.6 ns/session	       185.0 payload-B	        32.00 store-L1-cap	        32.00 store-L1-max	368874216 B/op	 3000194 allocs/op
BenchmarkMemoryBound-2                  	       2	 808645827 ns/op	       410.7 B/entry	     10000 L1-cap	     10000 L1-entries	       808.6 ns/session	       185.0 payload-B	        32.00 store-L1-cap	        32.00 store-L1-max	368874216 B/op	 3000194 allocs/op
BenchmarkTouch-2                        	 1294651	      1556 ns/op	         0.0000015 commands/touch	         0.0000015 writes/touch	      48 B/op	       1 allocs/op
BenchmarkTouch-2                        	 1294651	      1556 ns/op	         0.0000015 commands/touch	         0.0000015 writes/touch	      48 B/op	       1 allocs/op
BenchmarkDirectTouch-2                  	     194	   8248638 ns/op	         1.000 commands/touch	         1.000 writes/touch	    7842 B/op	     102 allocs/op
BenchmarkDirectTouch-2                  	     194	   8248638 ns/op	         1.000 commands/touch	         1.000 writes/touch	    7842 B/op	     102 allocs/op
PASS
ok  	github.com/sessionstore/sessionstore/bench	32.922s
`

func verdicts(t *testing.T, input string) map[string]verdict {
	t.Helper()
	r, err := parse(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]verdict{}
	for _, v := range check(r) {
		m[v.target] = v
	}
	if len(m) != len(targets) {
		t.Fatalf("%d verdicts for %d targets", len(m), len(targets))
	}
	return m
}

func TestAllPass(t *testing.T) {
	for name, v := range verdicts(t, sample) {
		if v.status != pass {
			t.Errorf("%s: %s", name, v)
		}
	}
}

func TestMedianAndSuffix(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := r.median("GetHit", "ns/op"); err != nil || m != 4848 {
		t.Errorf("median GetHit ns/op = %v, %v; want 4848", m, err)
	}
	if m, err := r.median("Codec/msgpack/decode", "allocs/op"); err != nil || m != 14 {
		t.Errorf("median decode allocs/op = %v, %v; want 14", m, err)
	}
}

func TestEveryRunCounts(t *testing.T) {
	// One run of two finds a cold session twice: the median would hide it.
	in := strings.Replace(sample, "1.000 finds/op", "2.000 finds/op", 1)
	if v := verdicts(t, in)["GetMissCollapsed finds/op == 1 in every run"]; v.status != fail {
		t.Errorf("got %s, want FAIL", v)
	}
	in = strings.Replace(sample, "10000 L1-entries", "10001 L1-entries", 1)
	if v := verdicts(t, in)["MemoryBound L1-entries <= L1-cap in every run"]; v.status != fail {
		t.Errorf("got %s, want FAIL", v)
	}
}

func TestRatios(t *testing.T) {
	in := strings.ReplaceAll(sample, "2835 ns/op", "4000 ns/op")
	in = strings.ReplaceAll(in, "2935 ns/op", "4000 ns/op")
	if v := verdicts(t, in)["GetHitParallel throughput >= 1.5 x GetHit"]; v.status != fail {
		t.Errorf("got %s, want FAIL", v)
	}
	in = strings.ReplaceAll(sample, "      15 allocs/op", "      16 allocs/op")
	if v := verdicts(t, in)["GetHit allocs/op <= Codec/msgpack/decode + 1"]; v.status != fail {
		t.Errorf("got %s, want FAIL", v)
	}
}

func TestMissingSkips(t *testing.T) {
	var kept []string
	for line := range strings.Lines(sample) {
		if !strings.HasPrefix(line, "BenchmarkDirectTouch") {
			kept = append(kept, line)
		}
	}
	v := verdicts(t, strings.Join(kept, ""))["DirectTouch commands/touch >= 50 x Touch"]
	if v.status != skip {
		t.Errorf("got %s, want SKIP", v)
	}
}

func TestNoResults(t *testing.T) {
	if _, err := parse(strings.NewReader("PASS\nok x 1s\n")); err == nil {
		t.Error("no error for input without results")
	}
}
