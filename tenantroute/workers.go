package tenantroute

import "time"

// workerIdle is how long a send worker waits for more work before it exits.
const workerIdle = 10 * time.Second

// sendWorkers runs the extra send workers of split requests (sendParallel)
// on goroutines kept between requests. A fresh goroutine per worker and
// request grew its stack again each time, deep into the HTTP client and the
// snappy encoder (about 5% of split mode's CPU went to copying stacks);
// a kept worker has grown it once. Idle workers exit after workerIdle, so
// a Router replaced by a reload leaves nothing behind.
type sendWorkers struct {
	jobs chan func() // unbuffered: a send succeeds only to an idle worker
	idle time.Duration
}

func newSendWorkers(idle time.Duration) *sendWorkers {
	return &sendWorkers{jobs: make(chan func()), idle: idle}
}

// run runs job on an idle worker, or on a new one when none is idle.
func (p *sendWorkers) run(job func()) {
	select {
	case p.jobs <- job:
	default:
		go p.work(job)
	}
}

func (p *sendWorkers) work(job func()) {
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		job()
		idle.Reset(p.idle)
		select {
		case job = <-p.jobs:
		case <-idle.C:
			return
		}
	}
}
