// Command klamm-compat-group is part of klamm's real-client compatibility
// suite (tests/compat). It drives a classic consumer group of three franz-go
// members against a broker while a producer keeps writing, makes the members
// join one by one and later leave (each change is a rebalance), and checks:
//
//   - every acknowledged record is consumed by some member;
//   - no partition is assigned to two members at the same time;
//   - no record is delivered to two members within one generation;
//   - (with -strict) no record is delivered twice at all: members commit
//     synchronously after every poll and again on revoke, with rebalances
//     blocked while a poll is being processed, so a correct broker redelivers
//     nothing.
//
// With -protocol consumer the members use the KIP-848 consumer group
// protocol (franz-go's next-gen balancer, server-side assignment: the
// balancer picks the server assignor, range -> "range", sticky or
// cooperative-sticky -> "uniform"). franz-go v1.19 enables it only through
// its context opt-in, and only when the broker offers ConsumerGroupHeartbeat
// v1; the run fails if the group did not use it.
//
// It exits 0 and prints "OK ..." on success, or prints "FAIL: ..." lines and
// exits 1. Every wait is bounded by -timeout.
//
// `klamm-compat-group txn ...` runs the transactional check instead (txn.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type delivery struct {
	member     string
	generation int32
}

type partOffset struct {
	partition int32
	offset    int64
}

// tracker records assignments and deliveries from all members.
type tracker struct {
	mu         sync.Mutex
	topic      string
	owned      map[string]map[int32]bool // member -> partitions currently owned
	deliveries map[partOffset][]delivery
	values     map[string]int // value -> times consumed
	failures   []string
	commitErrs int
	rebalances int
}

func newTracker(topic string) *tracker {
	return &tracker{
		topic:      topic,
		owned:      map[string]map[int32]bool{},
		deliveries: map[partOffset][]delivery{},
		values:     map[string]int{},
	}
}

func (t *tracker) fail(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failLocked(format, args...)
}

func (t *tracker) failLocked(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(t.failures) < 50 {
		t.failures = append(t.failures, msg)
	}
	fmt.Fprintln(os.Stderr, "violation:", msg)
}

func (t *tracker) assigned(member string, gen int32, parts []int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rebalances++
	if t.owned[member] == nil {
		t.owned[member] = map[int32]bool{}
	}
	for _, p := range parts {
		for other, set := range t.owned {
			if other != member && set[p] {
				t.failLocked("partition %d assigned to %s (generation %d) while still owned by %s", p, member, gen, other)
			}
		}
		t.owned[member][p] = true
	}
	fmt.Fprintf(os.Stderr, "%s generation %d assigned %v\n", member, gen, parts)
}

func (t *tracker) revoked(member string, parts []int32, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range parts {
		delete(t.owned[member], p)
	}
	fmt.Fprintf(os.Stderr, "%s %s %v\n", member, why, parts)
}

func (t *tracker) delivered(member string, gen int32, r *kgo.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := partOffset{r.Partition, r.Offset}
	if !t.owned[member][r.Partition] {
		t.failLocked("%s got partition %d offset %d in generation %d without owning the partition", member, r.Partition, r.Offset, gen)
	}
	for _, d := range t.deliveries[key] {
		if d.generation == gen && d.member != member {
			t.failLocked("partition %d offset %d delivered to %s and %s in the same generation %d", r.Partition, r.Offset, d.member, member, gen)
		}
	}
	t.deliveries[key] = append(t.deliveries[key], delivery{member, gen})
	t.values[string(r.Value)]++
}

// members returns which members currently own at least one partition, and
// whether the current ownership covers all partitions exactly once.
func (t *tracker) snapshot(partitions int32) (owners []string, complete bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	count := map[int32]int{}
	for m, set := range t.owned {
		if len(set) > 0 {
			owners = append(owners, m)
		}
		for p := range set {
			count[p]++
		}
	}
	sort.Strings(owners)
	complete = int32(len(count)) == partitions
	for _, c := range count {
		if c != 1 {
			complete = false
		}
	}
	return owners, complete
}

type member struct {
	name string
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
}

// nextGen makes the members use the KIP-848 consumer protocol.
var nextGen bool

func startMember(name string, brokers []string, group, topic string, balancer kgo.GroupBalancer, t *tracker) (*member, error) {
	m := &member{name: name, stop: make(chan struct{}), done: make(chan struct{})}
	ctx := context.Background()
	if nextGen {
		ctx = context.WithValue(ctx, "opt_in_kafka_next_gen_balancer_beta", true)
	}
	cl, err := kgo.NewClient(
		kgo.WithContext(ctx),
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("klamm-compat-"+name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.RebalanceTimeout(30*time.Second),
		kgo.FetchMaxWait(300*time.Millisecond),
		kgo.RetryTimeout(20*time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			_, gen := cl.GroupMetadata()
			t.assigned(name, gen, m[topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := cl.CommitUncommittedOffsets(cctx); err != nil {
				t.mu.Lock()
				t.commitErrs++
				t.mu.Unlock()
				fmt.Fprintf(os.Stderr, "%s commit on revoke failed: %v\n", name, err)
			}
			t.revoked(name, m[topic], "revoked")
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m[topic]) == 0 {
				// franz-go's next-gen path calls this with nothing while a
				// starting broker has no coordinator yet: nothing is lost.
				return
			}
			t.fail("%s lost partitions %v (fatal group error)", name, m[topic])
			t.revoked(name, m[topic], "lost")
		}),
	)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	go m.loop(t)
	return m, nil
}

func (m *member) loop(t *tracker) {
	defer close(m.done)
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fetches := m.cl.PollRecords(ctx, 200)
		cancel()
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			fmt.Fprintf(os.Stderr, "%s fetch error %s[%d]: %v\n", m.name, topic, p, err)
		})
		recs := fetches.Records()
		if len(recs) > 0 {
			_, gen := m.cl.GroupMetadata()
			for _, r := range recs {
				t.delivered(m.name, gen, r)
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := m.cl.CommitUncommittedOffsets(cctx); err != nil {
				t.mu.Lock()
				t.commitErrs++
				t.mu.Unlock()
				fmt.Fprintf(os.Stderr, "%s commit failed: %v\n", m.name, err)
			}
			ccancel()
		}
		m.cl.AllowRebalance()
	}
}

// leave stops polling and closes the client, which commits (on revoke) and
// sends LeaveGroup.
func (m *member) leave(timeout time.Duration) error {
	close(m.stop)
	select {
	case <-m.done:
	case <-time.After(timeout):
		return fmt.Errorf("%s: poll loop did not stop within %v", m.name, timeout)
	}
	closed := make(chan struct{})
	go func() { m.cl.CloseAllowingRebalance(); close(closed) }()
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s: close did not finish within %v", m.name, timeout)
	}
}

func waitFor(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			fmt.Fprintf(os.Stderr, "reached: %s\n", what)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
}

type producer struct {
	cl    *kgo.Client
	mu    sync.Mutex
	acked []string
	errs  []string
	stop  chan struct{}
	done  chan struct{}
}

func startProducer(brokers []string, topic string, partitions int32, maxRecords int, every time.Duration) (*producer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("klamm-compat-producer"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(20*time.Second),
	)
	if err != nil {
		return nil, err
	}
	p := &producer{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < maxRecords; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			v := fmt.Sprintf("rec-%06d", i)
			r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%17)), Value: []byte(v), Partition: int32(i) % partitions}
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			res := cl.ProduceSync(ctx, r)
			cancel()
			p.mu.Lock()
			if err := res.FirstErr(); err != nil {
				p.errs = append(p.errs, fmt.Sprintf("%s: %v", v, err))
			} else {
				p.acked = append(p.acked, v)
			}
			p.mu.Unlock()
			time.Sleep(every)
		}
	}()
	return p, nil
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func run() error {
	brokersFlag := flag.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma separated")
	topic := flag.String("topic", "compat-group", "topic to create and consume")
	group := flag.String("group", "compat-group", "consumer group id")
	partitions := flag.Int("partitions", 6, "partition count of the created topic")
	maxRecords := flag.Int("max-records", 5000, "upper bound on produced records")
	every := flag.Duration("produce-every", 5*time.Millisecond, "pause between produced records")
	balancerName := flag.String("balancer", "range", "range | roundrobin | sticky | cooperative-sticky")
	timeout := flag.Duration("timeout", 45*time.Second, "bound on each phase")
	strict := flag.Bool("strict", true, "fail on any redelivered record (not only within a generation)")
	protocol := flag.String("protocol", "classic", "classic | consumer (KIP-848)")
	flag.Parse()
	switch *protocol {
	case "classic":
	case "consumer":
		nextGen = true
	default:
		return fmt.Errorf("unknown protocol %q", *protocol)
	}

	brokers := strings.Split(*brokersFlag, ",")
	var balancer kgo.GroupBalancer
	switch *balancerName {
	case "range":
		balancer = kgo.RangeBalancer()
	case "roundrobin":
		balancer = kgo.RoundRobinBalancer()
	case "sticky":
		balancer = kgo.StickyBalancer()
	case "cooperative-sticky":
		balancer = kgo.CooperativeStickyBalancer()
	default:
		return fmt.Errorf("unknown balancer %q", *balancerName)
	}
	nparts := int32(*partitions)

	// Create the topic through the admin API.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("klamm-compat-admin"))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	resp, err := adm.CreateTopic(ctx, nparts, 1, nil, *topic)
	cancel()
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic: %w", resp.Err)
	}

	t := newTracker(*topic)
	prod, err := startProducer(brokers, *topic, nparts, *maxRecords, *every)
	if err != nil {
		return err
	}
	stopProducer := func() {
		select {
		case <-prod.stop:
		default:
			close(prod.stop)
		}
		<-prod.done
	}
	defer prod.cl.Close()

	stable := func(want ...string) func() bool {
		sort.Strings(want)
		return func() bool {
			owners, complete := t.snapshot(nparts)
			return complete && strings.Join(owners, ",") == strings.Join(want, ",")
		}
	}
	// Each phase waits for some records to be produced first, so that
	// production overlaps every membership change.
	produced := func(n int) func() bool { return func() bool { return prod.count() >= n } }

	var members []*member
	fail := func(err error) error {
		stopProducer()
		for _, m := range members {
			select {
			case <-m.stop:
			default:
				_ = m.leave(10 * time.Second)
			}
		}
		return err
	}

	phase := func(n int, what string, cond func() bool) error {
		if err := waitFor(fmt.Sprintf("%d records acknowledged", n), *timeout, produced(n)); err != nil {
			return err
		}
		return waitFor(what, *timeout, cond)
	}

	m1, err := startMember("m1", brokers, *group, *topic, balancer, t)
	if err != nil {
		return fail(err)
	}
	members = append(members, m1)
	if err := phase(20, "m1 owns all partitions", stable("m1")); err != nil {
		return fail(err)
	}
	if nextGen {
		// ConsumerGroupDescribe knows only consumer-protocol groups.
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{*group}
		dctx, dcancel := context.WithTimeout(context.Background(), *timeout)
		resp, err := req.RequestWith(dctx, admCl)
		dcancel()
		if err != nil {
			return fail(fmt.Errorf("ConsumerGroupDescribe: %w", err))
		}
		if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Members) != 1 {
			return fail(fmt.Errorf("the group does not use the consumer protocol: %+v", resp.Groups))
		}
	}
	m2, err := startMember("m2", brokers, *group, *topic, balancer, t)
	if err != nil {
		return fail(err)
	}
	members = append(members, m2)
	if err := phase(60, "m1+m2 share all partitions", stable("m1", "m2")); err != nil {
		return fail(err)
	}
	m3, err := startMember("m3", brokers, *group, *topic, balancer, t)
	if err != nil {
		return fail(err)
	}
	members = append(members, m3)
	if err := phase(100, "m1+m2+m3 share all partitions", stable("m1", "m2", "m3")); err != nil {
		return fail(err)
	}
	if err := waitFor("140 records acknowledged", *timeout, produced(140)); err != nil {
		return fail(err)
	}
	if err := m3.leave(*timeout); err != nil {
		return fail(err)
	}
	if err := phase(180, "m1+m2 share all partitions after m3 left", stable("m1", "m2")); err != nil {
		return fail(err)
	}
	if err := m2.leave(*timeout); err != nil {
		return fail(err)
	}
	if err := phase(220, "m1 owns all partitions after m2 left", stable("m1")); err != nil {
		return fail(err)
	}
	stopProducer()
	prod.mu.Lock()
	acked := append([]string(nil), prod.acked...)
	prodErrs := append([]string(nil), prod.errs...)
	prod.mu.Unlock()

	allConsumed := func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, v := range acked {
			if t.values[v] == 0 {
				return false
			}
		}
		return true
	}
	waitErr := waitFor("every acknowledged record consumed", *timeout, allConsumed)
	if err := m1.leave(*timeout); err != nil {
		return err
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	var problems []string
	problems = append(problems, t.failures...)
	if waitErr != nil {
		missing := 0
		for _, v := range acked {
			if t.values[v] == 0 {
				missing++
			}
		}
		problems = append(problems, fmt.Sprintf("%d of %d acknowledged records never consumed", missing, len(acked)))
	}
	for _, e := range prodErrs {
		problems = append(problems, "produce failed: "+e)
	}
	redelivered := 0
	for po, ds := range t.deliveries {
		if len(ds) > 1 {
			redelivered++
			if *strict && redelivered <= 10 {
				problems = append(problems, fmt.Sprintf("partition %d offset %d delivered %d times: %v", po.partition, po.offset, len(ds), ds))
			}
		}
	}
	if *strict && redelivered > 10 {
		problems = append(problems, fmt.Sprintf("... %d records redelivered in total", redelivered))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Println("FAIL:", p)
		}
		return fmt.Errorf("%d problems", len(problems))
	}
	fmt.Printf("OK produced=%d consumed=%d redelivered=%d rebalance_callbacks=%d commit_errors=%d balancer=%s protocol=%s\n",
		len(acked), len(t.values), redelivered, t.rebalances, t.commitErrs, *balancerName, *protocol)
	return nil
}

func splitBrokers(s string) []string {
	return strings.Split(s, ",")
}

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "txn" {
		err = runTxn(os.Args[2:])
	} else {
		err = run()
	}
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}
