package queue

import "runtime"

// maxBatch bounds the records one commit round takes, so a burst cannot make
// the first of them wait for an unbounded write.
const maxBatch = 256

// appendReq is one Send waiting for its record to be durable.
type appendReq struct {
	e    *endpoint  // whose record it is
	rec  *[]byte    // the encoded record, from Queue.bufs; the committer returns it
	ref  recordRef  // where it was written (enqueued is set by Send)
	done chan error // buffered: the committer never blocks on a caller gone away
}

// commitLoop is the queue's committer, one goroutine for every endpoint: it
// takes every record waiting, appends them to the shared log, fsyncs once
// and answers their Sends (group commit across endpoints: in split mode a
// producer request becomes one record per tenant, all committed by one
// fsync). It returns when appends closes.
func (q *Queue) commitLoop() {
	defer close(q.committerDone)
	batch := make([]*appendReq, 0, maxBatch)
	for req := range q.appends {
		// The other Sends of a split request are usually on their way: let
		// them reach the channel, so that one fsync commits them all.
		runtime.Gosched()
		batch = append(batch[:0], req)
		batch = drain(q.appends, batch)
		q.commitBatch(batch)
	}
}

// commitBatch writes and fsyncs the batch, hands each durable record to its
// endpoint's cursor and answers each Send. A record is answered with the
// error unless it is durable: after a failure some records of the batch may
// have been committed by a segment rotation before it, and those are kept
// (a producer retrying them makes duplicates, never losses).
func (q *Queue) commitBatch(batch []*appendReq) {
	var err error
	written := 0
	for i := 0; i < len(batch); i++ {
		r := batch[i]
		if err == nil {
			r.ref.at, r.ref.end, err = q.log.write(*r.rec)
			if err == nil {
				written++
			}
		}
		q.putBuf(r.rec)
		if i == len(batch)-1 && err == nil {
			batch = drain(q.appends, batch) // what arrived during the writes shares the fsync too
		}
	}
	if err == nil {
		err = q.log.commit()
	}
	if err != nil {
		q.logLimit.Warn(q.logger, "write", "queue: cannot write to disk; answering 503", "error", err)
	}
	for i, r := range batch {
		switch {
		case i >= written:
			r.done <- err
		case err == nil || q.log.committed(r.ref.at, r.ref.end):
			r.e.cur.push(r.ref)
			r.done <- nil
		default:
			q.log.unref(r.ref.at.seg, r.e.id, r.ref.size())
			r.done <- err
		}
	}
}

// drain adds the requests already waiting in ch to batch, without blocking.
func drain(ch chan *appendReq, batch []*appendReq) []*appendReq {
	for len(batch) < maxBatch {
		select {
		case r, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}
