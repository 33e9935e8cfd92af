package data

import "sync"

// ordered runs work(0), work(1), ..., work(n-1) on up to `ahead`
// goroutines at a time and hands the results back in order. At most
// `ahead` results are computed and not yet taken, so memory stays bounded
// by what that many results hold, however large n is.
type ordered[T any] struct {
	results chan chan orderedResult[T]
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

type orderedResult[T any] struct {
	v   T
	err error
}

func startOrdered[T any](n, ahead int, work func(i int) (T, error)) *ordered[T] {
	o := &ordered[T]{results: make(chan chan orderedResult[T], max(ahead-1, 0)), stop: make(chan struct{})}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer close(o.results)
		for i := range n {
			ch := make(chan orderedResult[T], 1)
			select {
			case o.results <- ch:
			case <-o.stop:
				return
			}
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				v, err := work(i)
				ch <- orderedResult[T]{v, err}
			}()
		}
	}()
	return o
}

// next returns the next result; ok is false after the last.
func (o *ordered[T]) next() (v T, err error, ok bool) {
	ch, ok := <-o.results
	if !ok {
		return v, nil, false
	}
	r := <-ch
	return r.v, r.err, true
}

// close stops starting work and waits for the work in flight.
func (o *ordered[T]) close() {
	o.once.Do(func() { close(o.stop) })
	o.wg.Wait()
}
