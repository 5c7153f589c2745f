package presence

// SetAfterWrite makes the presence writer call f after each write returns
// and before it records the result: a test runs there what a socket does
// while a write is in flight. Set it before the first write.
func (p *Tracker) SetAfterWrite(f func()) { p.afterWrite = f }
