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
BenchmarkGetHit-2                       	  213984	      4896 ns/op	         0 finds/op	     631 B/op	      14 allocs/op
BenchmarkGetHit-2                       	  213984	      4800 ns/op	         0 finds/op	     631 B/op	      14 allocs/op
BenchmarkGetHitClone-2                  	 2085421	       539.3 ns/op	         0 finds/op	     370 B/op	       3 allocs/op
BenchmarkGetHitClone-2                  	 2085421	       549.3 ns/op	         0 finds/op	     370 B/op	       3 allocs/op
BenchmarkFloorClone-2                   	 3276840	       371.8 ns/op	     368 B/op	       3 allocs/op
BenchmarkFloorClone-2                   	 3276840	       381.8 ns/op	     368 B/op	       3 allocs/op
BenchmarkGetHitTracing/off-2            	  213984	      4900 ns/op	         0 finds/op	     631 B/op	      14 allocs/op
BenchmarkGetHitTracing/off-2            	  213984	      4910 ns/op	         0 finds/op	     631 B/op	      14 allocs/op
BenchmarkHitRatios/clone-2              	     831	   1464042 ns/op	       412.1 floor-ns/get	       436.1 floor-par-ns/get	         0.9448 floor-speedup	         1.258 speedup	         1.331 speedup-x-floor	       556.1 store-ns/get	       521.7 store-par-ns/get	         1.35 x-floor
BenchmarkHitRatios/clone-2              	     831	   1464042 ns/op	       412.1 floor-ns/get	       436.1 floor-par-ns/get	         0.9448 floor-speedup	         1.258 speedup	         1.331 speedup-x-floor	       556.1 store-ns/get	       521.7 store-par-ns/get	         1.35 x-floor
BenchmarkHitRatios/decode-2             	     268	   4394286 ns/op	      1483 floor-ns/get	      1165 floor-par-ns/get	         1.273 floor-speedup	         1.499 speedup	         1.178 speedup-x-floor	      1737 store-ns/get	      1159 store-par-ns/get	         1.172 x-floor
BenchmarkHitRatios/decode-2             	     268	   4394286 ns/op	      1483 floor-ns/get	      1165 floor-par-ns/get	         1.273 floor-speedup	         1.499 speedup	         1.178 speedup-x-floor	      1737 store-ns/get	      1159 store-par-ns/get	         1.172 x-floor
BenchmarkDirectFindOne-2                	    1206	   1470602 ns/op	    7863 B/op	      87 allocs/op
BenchmarkDirectFindOne-2                	    1206	   1570602 ns/op	    7863 B/op	      87 allocs/op
BenchmarkGetMissCollapsed-2             	     300	   8777370 ns/op	         1.000 finds/op	        32.00 gets/op	   41797 B/op	     789 allocs/op
BenchmarkGetMissCollapsed-2             	     300	   8777370 ns/op	         1.000 finds/op	        32.00 gets/op	   41797 B/op	     789 allocs/op
BenchmarkMemoryBound-2                  	       2	 808645827 ns/op	       410.7 B/entry	     10000 L1-cap	     10000 L1-entries	       808.6 ns/session	       185.0 payload-B	        32.00 store-L1-cap	        32.00 store-L1-max	368874216 B/op	 3000194 allocs/op
BenchmarkMemoryBound-2                  	       2	 808645827 ns/op	       410.7 B/entry	     10000 L1-cap	     10000 L1-entries	       808.6 ns/session	       185.0 payload-B	        32.00 store-L1-cap	        32.00 store-L1-max	368874216 B/op	 3000194 allocs/op
BenchmarkTouch-2                        	 1294651	      1556 ns/op	         0.0000015 commands/touch	         0.0000015 writes/touch	      48 B/op	       1 allocs/op
BenchmarkTouch-2                        	 1294651	      1556 ns/op	         0.0000015 commands/touch	         0.0000015 writes/touch	      48 B/op	       1 allocs/op
BenchmarkTouchSkip/memory-2             	 2539198	       778.7 ns/op	         0.0000020 writes/touch	       4 B/op	       0 allocs/op
BenchmarkTouchSkip/memory-2             	 2787703	       815.3 ns/op	         0.0000018 writes/touch	       4 B/op	       0 allocs/op
BenchmarkTouchSkip/buffered-2           	 4912188	       238.6 ns/op	         0.0000006 writes/touch	       3 B/op	       0 allocs/op
BenchmarkTouchSkip/buffered-2           	 6044127	       219.8 ns/op	         0.0000005 writes/touch	       2 B/op	       0 allocs/op
BenchmarkDirectTouch-2                  	     194	   8248638 ns/op	         1.000 commands/touch	         1.000 writes/touch	    7842 B/op	     102 allocs/op
BenchmarkDirectTouch-2                  	     194	   8248638 ns/op	         1.000 commands/touch	         1.000 writes/touch	    7842 B/op	     102 allocs/op
PASS
ok  	github.com/sessionstore/sessionstore/bench	32.922s
server: ferretdb; 1 instances; 32 clients; each workload: at most 100000 requests or 10s; 2 rounds
BenchmarkLoad/floor-2	100000	11172 ns/op	89511 req/s	22.0 allocs/req	19023 cpu-ns/req	0.00000 commands/req
BenchmarkLoad/returning-2	100000	12319 ns/op	81178 req/s	28.1 allocs/req	21017 cpu-ns/req	0.00002 commands/req
BenchmarkLoad/newfloor-2	1500	6666666 ns/op	150 req/s	900.0 allocs/req	5000000 cpu-ns/req	1.00000 commands/req
BenchmarkLoad/new-2	1450	6896551 ns/op	145 req/s	950.0 allocs/req	5100000 cpu-ns/req	1.00000 commands/req
BenchmarkLoad/returning-2	100000	12189 ns/op	82036 req/s	28.1 allocs/req	19450 cpu-ns/req	0.00002 commands/req
BenchmarkLoad/floor-2	100000	10876 ns/op	91948 req/s	22.0 allocs/req	17751 cpu-ns/req	0.00000 commands/req
BenchmarkLoad/new-2	1440	6944444 ns/op	144 req/s	950.0 allocs/req	5100000 cpu-ns/req	1.00000 commands/req
BenchmarkLoad/newfloor-2	1510	6622516 ns/op	151 req/s	900.0 allocs/req	5000000 cpu-ns/req	1.00000 commands/req
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
	for _, c := range []struct{ target, from, to string }{
		{"GetHit with Clone <= 1.5 x floor (map + clone), interleaved", "1.35 x-floor", "1.61 x-floor"},
		{"GetHit without Clone <= 1.3 x LRU + decode, interleaved", "1.172 x-floor", "1.4 x-floor"},
		{"GetHitParallel speedup >= 0.9 x the floor's (map + clone)", "1.499 speedup", "0.5 speedup"},
		{"GetHitCloneParallel speedup >= 0.9 x the floor's, interleaved", "1.331 speedup-x-floor", "0.8 speedup-x-floor"},
		{"GetHitClone allocs/op <= FloorClone allocs/op + 1", "370 B/op	       3 allocs/op", "370 B/op	       5 allocs/op"},
		{"GetHit allocs/op <= Codec/msgpack/decode (no-op telemetry)", "631 B/op	      14 allocs/op", "631 B/op	      15 allocs/op"},
		{"TouchSkip/buffered allocs/op == 0 in every run", "3 B/op	       0 allocs/op", "3 B/op	       1 allocs/op"},
		{"Load returning req/s >= 0.8 x Load floor", "81178 req/s", "10000 req/s"},
		{"Load returning commands/req <= 0.01", "0.00002 commands/req", "0.5 commands/req"},
	} {
		// Both runs, where the median would need them.
		in := strings.ReplaceAll(sample, c.from, c.to)
		if in == sample {
			t.Fatalf("%s: %q is not in the sample", c.target, c.from)
		}
		if v := verdicts(t, in)[c.target]; v.status != fail {
			t.Errorf("%s with %q: got %s, want FAIL", c.target, c.to, v)
		}
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
