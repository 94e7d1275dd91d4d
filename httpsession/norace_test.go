//go:build !race

package httpsession

// raceEnabled reports whether the race detector is on. It makes sync.Pool
// drop items at random, so allocation budgets do not hold.
const raceEnabled = false
