"""TaskReplayBuffer against a plain-Python reference ring of transitions (learning/replay_buffer.py).

The reference keeps every transition with its own next_obs, in a dict slot -> transition with
slot = global row index % capacity, so it knows nothing about links or the side store.
"""

import random

import pytest
import torch

from learning.replay_buffer import TaskReplayBuffer, TransitionBatch

D, A = 3, 2


def bits(x):
    return x.contiguous().view(torch.int32)


class Streams:
    """T tasks x E env streams with random episode ends (termination or truncation), step-major
    rows like Sampler.collect; at a done step next_obs is the final obs, the next obs a reset."""

    def __init__(self, t, e, p_end=0.15, seed=0):
        self.t, self.e, self.p_end = t, e, p_end
        self.gen = torch.Generator().manual_seed(seed)
        self.cur = self.rand(t, e, D)

    def rand(self, *shape):
        return torch.randn(*shape, generator=self.gen)

    def collect(self, steps):
        fields = []
        for _ in range(steps):
            obs = self.cur.clone()
            nxt = self.rand(self.t, self.e, D)
            done = torch.rand(self.t, self.e, generator=self.gen) < self.p_end
            term = done & (torch.rand(self.t, self.e, generator=self.gen) < 0.5)
            self.cur = torch.where(done[..., None], self.rand(self.t, self.e, D), nxt)
            fields.append((obs, self.rand(self.t, self.e, A), self.rand(self.t, self.e), nxt, term.float()))
        return TransitionBatch(*(torch.cat(f, dim=1) for f in zip(*fields)))


class Reference:
    """slot -> (obs, action, reward, next_obs, terminal) per task, written as the old buffer did
    (of a batch larger than the capacity only the newest ``capacity`` rows, from the pointer on)."""

    def __init__(self, t, capacity):
        self.t, self.capacity, self.rows, self.ptr, self.live = t, capacity, {}, 0, []

    def add(self, batch):
        n = batch.reward.shape[1]
        for i in range(max(0, n - self.capacity), n):
            row = [tuple(f[task, i] for f in batch[:5]) for task in range(self.t)]
            self.rows[self.ptr] = row
            self.live = (self.live + [row])[-self.capacity:]  # stored rows, oldest first
            self.ptr = (self.ptr + 1) % self.capacity

    def __len__(self):
        return len(self.live)

    def expected(self, source, idx):
        return [torch.stack([self.rows[int(i)][int(s)][k] for s, i in zip(source.flatten(), idx.flatten())])
                .reshape(*source.shape, *self.rows[0][0][k].shape) for k in range(5)]

    def side_rows(self, e):
        """Rows whose next_obs is not the obs of the stored row e later in the stream."""
        count = 0
        for p, row in enumerate(self.live):
            for task in range(self.t):
                succ = self.live[p + e][task][0] if p + e < len(self.live) else None
                count += succ is None or not torch.equal(bits(row[task][3]), bits(succ))
        return count


def check_sample(buf, ref, source, seed=0):
    torch.manual_seed(seed)
    idx = torch.randint(0, len(ref), source.shape)
    torch.manual_seed(seed)
    got = buf.sample_from(source)
    for value, want in zip(got, ref.expected(source, idx)):
        assert torch.equal(bits(value.float()), bits(want.float()))


def check_all_rows(buf, ref):
    assert len(buf) == len(ref)
    got = buf.transitions()
    n = len(ref)
    source = torch.arange(ref.t)[:, None].expand(ref.t, n)
    idx = torch.arange(n).expand(ref.t, n)
    for value, want in zip(got[:5], ref.expected(source, idx)):
        assert torch.equal(bits(value), bits(want))


def check_no_leaked_slots(buf):
    assert int(buf._used.sum()) == len(buf.state_dict()["final_obs"])  # every taken slot is a live row's


def all_source(t, n):
    return torch.arange(t)[:, None].expand(t, n)


@pytest.mark.parametrize("e,capacity", [(1, 40), (3, 40), (3, 7), (1, 1), (3, 2)])
def test_every_stored_row_matches_the_reference_across_random_adds_and_wraps(e, capacity):
    t = 2
    rng = random.Random(e * 100 + capacity)
    streams, buf, ref = Streams(t, e, seed=capacity), TaskReplayBuffer(t, capacity, D, A, stream_width=e), \
        Reference(t, capacity)
    stream = streams.collect(200)
    pos = 0
    while pos < stream.reward.shape[1]:
        n = rng.choice([1, 2, e, 2 * e + 1, 5, capacity + 3, 13])  # not multiples of E, > capacity
        part = TransitionBatch(*(f[:, pos: pos + n] for f in stream[:5]))
        pos += n
        buf.add(part)
        ref.add(part)
        check_all_rows(buf, ref)
        check_sample(buf, ref, all_source(t, 64), seed=pos)
        assert len(buf.state_dict()["final_obs"]) == ref.side_rows(e)
        assert int(buf._used.sum()) == ref.side_rows(e)  # no slot held by a row that is gone


def test_pending_rows_of_the_newest_add_return_their_next_obs_then_link():
    t, e = 2, 3
    streams = Streams(t, e, p_end=0.0)
    buf, ref = TaskReplayBuffer(t, 100, D, A, stream_width=e), Reference(t, 100)
    first = streams.collect(4)
    buf.add(first)
    ref.add(first)
    got = buf.transitions().next_obs[:, 9:]  # the 3 rows whose successor is not written yet
    assert torch.equal(got, first.next_obs[:, 9:])
    assert len(buf.state_dict()["final_obs"]) == t * e  # only they are in the side store
    second = streams.collect(2)
    buf.add(second)
    ref.add(second)
    check_all_rows(buf, ref)
    assert len(buf.state_dict()["final_obs"]) == t * e  # the old pending rows are linked now


def test_exact_bits_decide_linking():
    obs = torch.tensor([[[0.0], [0.0], [float("nan")], [1.0]]])
    nxt = torch.tensor([[[-0.0], [0.0], [2.0], [3.0]]])  # row 0: -0.0 vs next obs 0.0
    buf = TaskReplayBuffer(1, 10, 1, 1)
    buf.add(TransitionBatch(obs, torch.zeros(1, 4, 1), torch.zeros(1, 4), nxt, torch.zeros(1, 4)))
    assert torch.equal(bits(buf.transitions().next_obs), bits(nxt))


def test_n_larger_than_capacity_keeps_the_newest_rows():
    t, e, capacity = 2, 3, 10
    batch = Streams(t, e).collect(9)  # 27 rows per task
    buf, ref = TaskReplayBuffer(t, capacity, D, A, stream_width=e), Reference(t, capacity)
    buf.add(batch)
    ref.add(batch)
    check_all_rows(buf, ref)
    assert torch.equal(buf.transitions().reward[:, 7], batch.reward[:, -3])  # slot 27 % 10 = 7


def test_sample_from_mixed_sources():
    t, e = 3, 2
    buf, ref = TaskReplayBuffer(t, 30, D, A, stream_width=e), Reference(t, 30)
    for _ in range(4):
        batch = Streams(t, e, seed=_).collect(7)
        buf.add(batch)
        ref.add(batch)
    source = torch.randint(0, t, (4, 25), generator=torch.Generator().manual_seed(1))
    check_sample(buf, ref, source)
    assert buf.sample(5).obs.shape == (t, 5, D) and buf.sample_from(source).next_obs.shape == (4, 25, D)


def test_sampling_consumes_one_randint_of_the_source_shape():
    buf = TaskReplayBuffer(2, 20, D, A)
    buf.add(Streams(2, 1).collect(8))
    torch.manual_seed(3)
    buf.sample(7)
    after = torch.rand(4)
    torch.manual_seed(3)
    torch.randint(0, 8, (2, 7))
    assert torch.equal(after, torch.rand(4))


def fill(e, capacity, adds, seed=0):
    t = 2
    streams = Streams(t, e, seed=seed)
    buf, ref = TaskReplayBuffer(t, capacity, D, A, stream_width=e), Reference(t, capacity)
    for n in adds:
        batch = streams.collect(n)
        buf.add(batch)
        ref.add(batch)
    return buf, ref, streams


@pytest.mark.parametrize("e,adds", [(3, [5, 4, 9]), (1, [3]), (3, [2])])
def test_state_dict_round_trip_samples_and_continues_identically(e, adds):
    buf, ref, streams = fill(e, 25, adds)
    restored = TaskReplayBuffer(2, 25, D, A, stream_width=e)
    restored.add(Streams(2, e, seed=9).collect(3))  # stale contents must not leak into the load
    restored.load_state_dict(buf.state_dict())
    check_no_leaked_slots(restored)
    for seed in range(3):
        torch.manual_seed(seed)
        a = buf.sample(50)
        torch.manual_seed(seed)
        b = restored.sample(50)
        assert all(torch.equal(bits(x), bits(y)) for x, y in zip(a[:5], b[:5]))
    more = streams.collect(4)
    for target in (restored, ref):
        target.add(more)
    check_all_rows(restored, ref)
    other = TaskReplayBuffer(2, 25, D, A, stream_width=1)  # another stream width: relinked
    other.load_state_dict(buf.state_dict())
    ref_before, _, _ = fill(e, 25, adds)
    assert torch.equal(bits(other.transitions().next_obs), bits(ref_before.transitions().next_obs))


def test_state_dict_round_trip_when_side_slots_have_holes():
    t, capacity = 2, 20
    buf, ref = TaskReplayBuffer(t, capacity, D, A), Reference(t, capacity)
    for batch in (Streams(t, 1, p_end=1.0).collect(20), Streams(t, 1, p_end=0.0, seed=1).collect(12)):
        buf.add(batch)  # every row of the first batch ends an episode; the second chains
        ref.add(batch)  # and frees the low slots of the 12 rows it overwrites
    restored = TaskReplayBuffer(t, capacity, D, A)
    restored.load_state_dict(buf.state_dict())
    check_all_rows(restored, ref)
    check_sample(restored, ref, all_source(t, 50))


@pytest.mark.parametrize("adds", [[4, 3], [12]])  # partly filled ring; wrapped ring (ptr != 0)
def test_old_format_snapshot_loads_and_continues(adds):
    e, capacity = 3, 20
    _, ref, streams = fill(e, capacity, adds)
    n = len(ref)
    rows = [ref.rows[i] for i in range(n)]
    old = {"ptr": ref.ptr, "size": n}
    for k, name in enumerate(("obs", "action", "reward", "next_obs", "terminal")):
        old[name] = torch.stack([torch.stack([rows[i][task][k] for i in range(n)]) for task in range(2)])
    buf = TaskReplayBuffer(2, capacity, D, A, stream_width=e)
    buf.add(Streams(2, e, seed=9).collect(3))  # stale contents must not leak into the load
    buf.load_state_dict(old)
    check_all_rows(buf, ref)
    check_no_leaked_slots(buf)
    assert len(buf.state_dict()["final_obs"]) == ref.side_rows(e)
    more = streams.collect(3)
    buf.add(more)
    ref.add(more)
    check_all_rows(buf, ref)
    check_sample(buf, ref, all_source(2, 40))


def test_side_store_slots_are_reused_after_many_wraps():
    buf, ref, _ = fill(3, 30, [7] * 60)  # 1260 rows per task through a ring of 30
    check_all_rows(buf, ref)
    assert len(buf._final) <= 2 * 2 * 30  # bounded by twice the live rows, not by rows ever added


def test_bytes_per_transition_below_the_old_layout_for_chaining_data():
    t, e, obs_dim = 2, 2, 39
    buf = TaskReplayBuffer(t, 4000, obs_dim, 4, stream_width=e)
    old = 4 * (2 * obs_dim + 4 + 2)
    assert buf.memory_bytes() >= t * 4000 * 4 * (obs_dim + 4 + 3)
    cur = torch.randn(t, e, obs_dim)
    for step in range(2000):  # episodes of 100 steps
        nxt = torch.randn(t, e, obs_dim)
        buf.add(TransitionBatch(cur, torch.zeros(t, e, 4), torch.zeros(t, e), nxt, torch.zeros(t, e)))
        cur = torch.randn(t, e, obs_dim) if step % 100 == 99 else nxt
    per = buf.nbytes_per_transition()
    assert 4 * (obs_dim + 4 + 3) <= per < 0.6 * old


def test_errors():
    with pytest.raises(ValueError):
        TaskReplayBuffer(2, 10, D, A, stream_width=0)
    buf = TaskReplayBuffer(2, 10, D, A)
    with pytest.raises(RuntimeError):
        buf.sample(1)
    with pytest.raises(ValueError):
        buf.add(Streams(3, 1).collect(2))
    big, _, _ = fill(1, 12, [12])
    with pytest.raises(ValueError):
        buf.load_state_dict(big.state_dict())  # 12 rows > capacity 10
