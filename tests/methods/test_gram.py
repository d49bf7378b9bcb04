"""GradSpace.gram and the chunked passes: the inner products equal direct dot products (block rows,
separate rows, mixed; globally and per parameter tensor), and chunks never cross a tensor when asked."""
import pytest
import torch

from methods.gradspace import Gram, GradSpace, stacked_view

SIZES = [7, 30, 1, 64, 12, 300]
SEGMENTS = [(sum(SIZES[:i]), n) for i, n in enumerate(SIZES)]
N = sum(SIZES)


def random_rows(k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, N, generator=g) * torch.exp(torch.randn(k, N, generator=g))


def exact_gram(rows):
    m = torch.stack([r.double() for r in rows])
    return m @ m.T


def test_stacked_view_only_for_evenly_spaced_rows_of_one_storage():
    block = random_rows(4)
    assert stacked_view([block[0], block[1], block[2]]).shape == (3, N)
    assert torch.equal(stacked_view([block[1], block[3]]), block[[1, 3]])
    assert stacked_view([block[0], block[1], block[3]]) is None  # uneven spacing
    assert stacked_view([block[1], block[0]]) is None            # reversed order
    assert stacked_view([block[0], block[1].clone()]) is None    # another storage


def test_gram_equals_direct_dot_products_for_block_separate_and_mixed_rows():
    block = random_rows(3)
    extra = random_rows(1, seed=1)[0]
    for chunk in (None, 5, 64):
        space = GradSpace(SEGMENTS, chunk=chunk)
        for rows in ([block[0], block[1]], [block[0], block[1], block[2], extra], [extra, block[0]],
                     [block[2].clone(), block[0].clone()], [block[1]]):
            torch.testing.assert_close(space.gram(rows), exact_gram(rows), rtol=1e-6, atol=1e-6)


def test_per_segment_gram_is_the_gram_of_every_tensor():
    rows = list(random_rows(2)) + [random_rows(1, seed=2)[0]]
    space = GradSpace(SEGMENTS, chunk=8)
    per = space.gram(rows, per_segment=True)
    assert per.shape == (len(SEGMENTS), 3, 3)
    for index, (offset, numel) in enumerate(SEGMENTS):
        torch.testing.assert_close(per[index], exact_gram([r[offset:offset + numel] for r in rows]),
                                   rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(per[:, 0, 1], space.segment_dots(rows[0], rows[1]).double(), rtol=1e-5, atol=1e-5)


def test_pieces_cover_the_buffer_once_and_respect_tensor_boundaries():
    space = GradSpace(SEGMENTS, chunk=16)
    a = torch.zeros(N)
    for by_segment in (False, True):
        pieces = space.pieces(a, by_segment)
        covered = torch.zeros(N, dtype=torch.int64)
        for segment, start, end in pieces:
            assert 0 < end - start <= 16
            covered[start:end] += 1
            if by_segment:
                offset, numel = SEGMENTS[segment]
                assert offset <= start and end <= offset + numel
        assert (covered == 1).all()


def test_foreach_sums_partials_and_edits_in_place():
    a, b = random_rows(2)
    expected_dot = float(torch.dot(a.double(), b.double()))
    space = GradSpace(SEGMENTS, chunk=9)
    work = a.clone()

    def step(x, y):
        partial = torch.stack([torch.dot(x, y), x.sum()])
        x.mul_(2.0)
        return partial
    sums = space.foreach(step, work, b, sums=2)
    assert sums.dtype == torch.float64 and sums.shape == (2,)
    assert float(sums[0]) == pytest.approx(expected_dot, rel=1e-6)
    torch.testing.assert_close(work, 2 * a)


def test_named_gram_inner_products_of_combinations():
    rows = list(random_rows(3))
    gram = Gram(["f", "r", "m"], exact_gram(rows))
    x, y = {"f": 0.5, "r": -2.0}, {"m": 1.5, "f": 1.0}
    u, v = 0.5 * rows[0].double() - 2.0 * rows[1].double(), 1.5 * rows[2].double() + rows[0].double()
    assert abs(gram.inner(x, y) - float(u @ v)) <= 1e-9 * float(u.norm() * v.norm())
    assert abs(gram.sq_norm(x) - float(u @ u)) <= 1e-9 * float(u @ u)
    assert gram.norm("r") == pytest.approx(float(rows[1].double().norm()))
    # a combination that cancels to nothing next to its terms is not trusted
    same = Gram(["a", "b"], exact_gram([rows[0], rows[0]]))
    assert same.sq_norm({"a": 1.0, "b": -1.0}) is None
