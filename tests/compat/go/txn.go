package main

// `klamm-compat-group txn ...`: franz-go's GroupTransactSession, the
// consume-transform-produce loop of its EOS examples. It writes N records
// to an input topic, then two session members in one group read them,
// write "out-<value>" to an output topic (at most 40 records per transaction) and commit their input offsets in
// the same transaction; the first non-empty transaction of each member is
// aborted on purpose (its records must be processed again). A
// read_committed reader then checks that the output holds every input
// record exactly once. Prints "OK ..." or "FAIL: ..." and exits 0 or 1.

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func runTxn(args []string) error {
	fs := flag.NewFlagSet("txn", flag.ContinueOnError)
	brokersFlag := fs.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma separated")
	in := fs.String("in", "compat-txn-in", "input topic (created)")
	out := fs.String("out", "compat-txn-out", "output topic (created)")
	group := fs.String("group", "compat-txn", "consumer group id")
	records := fs.Int("records", 600, "input records")
	timeout := fs.Duration("timeout", 60*time.Second, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	brokers := splitBrokers(*brokersFlag)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	for _, t := range []string{*in, *out} {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, t); err != nil {
			return fmt.Errorf("create %s: %w", t, err)
		}
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(*in))
	if err != nil {
		return err
	}
	for i := 0; i < *records; i++ {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("v%05d", i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	prod.Close()

	var mu sync.Mutex
	processed := 0
	aborted := 0
	member := func(id int) error {
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(brokers...),
			kgo.TransactionalID(fmt.Sprintf("%s-txn-%d", *group, id)),
			kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup(*group),
			kgo.ConsumeTopics(*in),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.DefaultProduceTopic(*out),
		)
		if err != nil {
			return err
		}
		defer sess.Close()
		abortedOnce := false
		for ctx.Err() == nil {
			mu.Lock()
			done := processed >= *records
			mu.Unlock()
			if done {
				return nil
			}
			pollCtx, pollCancel := context.WithTimeout(ctx, 2*time.Second)
			fetches := sess.PollRecords(pollCtx, 40)
			pollCancel()
			if errs := fetches.Errors(); len(errs) > 0 {
				for _, e := range errs {
					if e.Err != context.DeadlineExceeded && e.Err != context.Canceled {
						return fmt.Errorf("member %d poll: %v", id, e.Err)
					}
				}
			}
			if fetches.NumRecords() == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				return fmt.Errorf("member %d begin: %w", id, err)
			}
			n := 0
			fetches.EachRecord(func(r *kgo.Record) {
				n++
				sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
			})
			try := kgo.TryCommit
			if !abortedOnce {
				try = kgo.TryAbort
			}
			committed, err := sess.End(ctx, try)
			if err != nil {
				return fmt.Errorf("member %d end: %w", id, err)
			}
			mu.Lock()
			if !abortedOnce {
				abortedOnce = true
				aborted += n
			} else if committed {
				processed += n
			}
			mu.Unlock()
		}
		return ctx.Err()
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = member(i)
		}(i)
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}

	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(*out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer reader.Close()
	seen := map[string]int{}
	total := 0
	quiet := time.Now().Add(3 * time.Second)
	for ctx.Err() == nil && (total < *records || time.Now().Before(quiet)) {
		pollCtx, pollCancel := context.WithTimeout(ctx, time.Second)
		f := reader.PollFetches(pollCtx)
		pollCancel()
		f.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			total++
		})
	}
	var problems []string
	for i := 0; i < *records; i++ {
		v := fmt.Sprintf("out-v%05d", i)
		if seen[v] != 1 {
			problems = append(problems, fmt.Sprintf("%s seen %d times", v, seen[v]))
		}
	}
	if total != *records {
		problems = append(problems, fmt.Sprintf("read %d committed output records, want %d", total, *records))
	}
	if len(problems) > 0 {
		for i, p := range problems {
			if i == 20 {
				fmt.Printf("FAIL: ... %d more\n", len(problems)-20)
				break
			}
			fmt.Println("FAIL:", p)
		}
		return fmt.Errorf("%d problems", len(problems))
	}
	fmt.Printf("OK records=%d processed=%d aborted_on_purpose=%d\n", *records, processed, aborted)
	return nil
}
