"""The discrete VAE's parts: straight-through gradients, EMA codebook, dead-code restarts, Gumbel-softmax."""

import math

import pytest
import torch

from genlab.nets.vq import (GumbelQuantizer, VectorQuantizerEMA, build_dvae, code_counts, gumbel_softmax,
                            perplexity)


def _grid(vectors: torch.Tensor) -> torch.Tensor:
    """(N, D) vectors as a (1, D, 1, N) grid, the layout the quantisers read."""
    return vectors.T[None, :, None, :].contiguous()


def test_straight_through_passes_the_decoder_gradient_to_the_encoder_unchanged():
    torch.manual_seed(0)
    quantizer = VectorQuantizerEMA(num_codes=8, dim=4).eval()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    upstream = torch.randn(2, 4, 3, 3)
    (quantizer(z).quantized * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)


@pytest.mark.parametrize("kind", ["vq", "gumbel"])
def test_reconstruction_loss_reaches_every_encoder_weight(kind):
    torch.manual_seed(0)
    model = build_dvae(kind, width=8, code_dim=4, num_codes=16, res_blocks=1)
    recon, q = model(torch.rand(4, 1, 28, 28) * 2 - 1)
    assert recon.shape == (4, 1, 28, 28) and q.indices.shape == (4, 7, 7)
    recon.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_vq_output_is_the_nearest_code_and_the_commitment_loss_is_beta_times_the_distance():
    quantizer = VectorQuantizerEMA(num_codes=3, dim=2, beta=0.25).eval()
    quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    z = _grid(torch.tensor([[0.9, 0.1], [0.1, 0.2], [0.2, 0.7]]))
    out = quantizer(z)
    assert out.indices.flatten().tolist() == [1, 0, 2]
    assert torch.allclose(out.quantized, _grid(quantizer.codebook[[1, 0, 2]]))
    expected = 0.25 * ((z - out.quantized) ** 2).mean()
    assert out.loss.item() == pytest.approx(expected.item())


def test_ema_update_moves_each_code_toward_the_mean_of_its_assigned_vectors():
    quantizer = VectorQuantizerEMA(num_codes=2, dim=2, decay=0.9, dead_threshold=1e-3)
    quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    quantizer.cluster_size.fill_(1.0)
    quantizer.embed_sum.copy_(quantizer.codebook)
    assigned = torch.tensor([[1.0, 1.0], [1.2, 0.8], [0.8, 1.2]])  # all nearest to code 0, mean (1, 1)
    quantizer.train()(_grid(assigned))
    # code 0: (0.9 * 0 + 0.1 * sum (3, 3)) / (0.9 * 1 + 0.1 * 3 assignments) = 0.25 (up to Laplace smoothing)
    assert torch.allclose(quantizer.codebook[0], torch.tensor([0.25, 0.25]), rtol=1e-3)
    assert torch.allclose(quantizer.codebook[1], torch.tensor([10.0, 10.0]), rtol=1e-3)  # unused: stays


def test_ema_update_sums_counts_and_vectors_over_ranks_with_the_given_reduction():
    """Two ranks that saw the same batch (a reduction that doubles) move the codebook as one process that saw
    the batch twice."""
    batch = torch.tensor([[1.0, 1.0], [1.2, 0.8], [9.0, 11.0]])
    doubled, twice = (VectorQuantizerEMA(num_codes=2, dim=2, decay=0.9, dead_threshold=1e-3) for _ in range(2))
    for quantizer in (doubled, twice):
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        quantizer.cluster_size.fill_(1.0)
        quantizer.embed_sum.copy_(quantizer.codebook)
    doubled.sum_over_ranks = lambda values: 2 * values
    doubled.train()(_grid(batch))
    twice.train()(_grid(torch.cat([batch, batch])))
    assert torch.allclose(doubled.cluster_size, twice.cluster_size)
    assert torch.allclose(doubled.codebook, twice.codebook)
    assert not torch.allclose(doubled.codebook, torch.tensor([[0.0, 0.0], [10.0, 10.0]]), atol=0.1)


def test_repeated_updates_converge_to_the_assigned_mean():
    quantizer = VectorQuantizerEMA(num_codes=1, dim=2, decay=0.5)
    assigned = torch.tensor([[2.0, -1.0], [4.0, 1.0]])
    for _ in range(40):
        quantizer.train()(_grid(assigned))
    assert torch.allclose(quantizer.codebook[0], torch.tensor([3.0, 0.0]), atol=1e-3)


def test_dead_code_restart_moves_an_unused_code_onto_a_batch_vector():
    torch.manual_seed(0)
    quantizer = VectorQuantizerEMA(num_codes=3, dim=2, decay=0.99, dead_threshold=1.0)
    quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [100.0, 100.0]]))
    quantizer.embed_sum.copy_(quantizer.codebook * 50)
    quantizer.cluster_size.copy_(torch.tensor([50.0, 50.0, 1.0]))  # code 2 falls below 1 after one unused batch
    batch = torch.tensor([[0.1, 0.0], [0.9, 0.1], [0.0, 0.2], [1.1, -0.1]])
    out = quantizer.train()(_grid(batch))
    assert out.dead_codes.item() == 1 and quantizer.restarts.item() == 1
    assert any(torch.equal(quantizer.codebook[2], v) for v in batch)
    assert quantizer.cluster_size[2].item() == 1.0
    assert torch.allclose(quantizer.codebook[:2], torch.tensor([[0.0, 0.0], [1.0, 0.0]]), atol=0.02)


def test_codes_no_vector_picks_are_reseeded_from_the_data():
    torch.manual_seed(0)
    quantizer = VectorQuantizerEMA(num_codes=16, dim=3).train()
    data = torch.randn(200, 3) + 50.0  # far from the random initial codes: one code wins everything at first
    picked = set(quantizer(_grid(data)).indices.flatten().tolist())
    for code in set(range(16)) - picked:
        assert (quantizer.codebook[code] == data).all(1).any()


@pytest.mark.parametrize("temperature", [5.0, 1.0, 0.1])
def test_gumbel_relaxation_is_a_distribution_over_codes(temperature):
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 3, 3) * 3
    sample = gumbel_softmax(logits, temperature, dim=1)
    assert (sample >= 0).all()
    assert torch.allclose(sample.sum(1), torch.ones(4, 3, 3))


def test_gumbel_relaxation_sharpens_toward_one_hot_samples_of_the_softmax():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1])).repeat(20000, 1)
    sample = gumbel_softmax(logits, 0.01, dim=1)
    assert sample.max(1).values.mean() > 0.99
    assert torch.allclose(sample.argmax(1).bincount(minlength=3) / 20000, torch.tensor([0.7, 0.2, 0.1]), atol=0.015)


def test_gumbel_quantizer_kl_to_the_uniform_prior():
    quantizer = GumbelQuantizer(num_codes=4, in_dim=2, dim=3, kl_weight=1.0)
    torch.nn.init.zeros_(quantizer.to_logits.weight)
    torch.nn.init.zeros_(quantizer.to_logits.bias)
    z = torch.randn(2, 2, 3, 3)
    assert quantizer.eval()(z).loss.item() == pytest.approx(0.0, abs=1e-6)  # uniform q: KL 0
    quantizer.to_logits.bias.data = torch.tensor([20.0, 0.0, 0.0, 0.0])
    assert quantizer(z).loss.item() == pytest.approx(math.log(4), rel=1e-4)  # one-hot q: KL log K


def test_gumbel_quantizer_mixes_codes_in_training_and_picks_one_in_evaluation():
    torch.manual_seed(0)
    quantizer = GumbelQuantizer(num_codes=5, in_dim=3, dim=2, straight_through=False)
    z = torch.randn(2, 3, 4, 4)
    hard = quantizer.eval()(z)
    assert torch.allclose(hard.quantized, quantizer.lookup(hard.indices))
    quantizer.train().temperature = 1.0
    soft = quantizer(z).quantized
    assert not torch.allclose(soft, hard.quantized)


def test_straight_through_gumbel_decodes_one_code_per_position_and_still_trains_the_logits():
    torch.manual_seed(0)
    quantizer = GumbelQuantizer(num_codes=5, in_dim=3, dim=2, straight_through=True).train()
    z = torch.randn(2, 3, 4, 4)
    out = quantizer(z)
    assert torch.allclose(out.quantized, quantizer.lookup(out.indices), atol=1e-6)
    out.quantized.sum().backward()
    assert quantizer.to_logits.weight.grad.abs().sum() > 0


def test_perplexity_counts_effectively_used_codes():
    assert perplexity(code_counts(torch.arange(8).repeat(5), 8)).item() == pytest.approx(8.0)
    assert perplexity(code_counts(torch.zeros(40, dtype=torch.long), 8)).item() == pytest.approx(1.0)
    assert perplexity(code_counts(torch.tensor([0, 0, 1, 1]), 8)).item() == pytest.approx(2.0)


def test_continuous_bottleneck_passes_the_encoders_vectors_through_without_loss():
    model = build_dvae("none", width=8, code_dim=4, res_blocks=1)
    x = torch.randn(2, 1, 28, 28)
    z = model.encoder(x)
    q = model.quantizer(z)
    assert torch.equal(q.quantized, z) and q.loss.item() == 0.0 and q.indices.shape == (2, 7, 7)
    assert torch.equal(model.latents(x), z)


@pytest.mark.parametrize("side, downsamples, grid", [(28, 2, 7), (28, 3, 4), (32, 3, 4), (28, 4, 2)])
def test_stride_two_stages_set_the_code_grid_and_the_decoder_restores_the_image_size(side, downsamples, grid):
    model = build_dvae("vq", width=8, code_dim=4, num_codes=16, res_blocks=1, downsamples=downsamples, side=side)
    recon, q = model(torch.randn(2, 1, side, side))
    assert q.indices.shape == (2, grid, grid) and recon.shape == (2, 1, side, side)


def test_consistency_is_the_distance_to_the_other_views_codes():
    vq = VectorQuantizerEMA(4, 2)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]))
    z = torch.zeros(1, 2, 1, 2)  # two positions at the origin
    assert vq.consistency(z, torch.tensor([[[1, 2]]])).item() == pytest.approx((1 + 4) / 4)  # mean over 2 x 2 numbers
    gumbel = GumbelQuantizer(3, 2, 2)
    z = torch.randn(1, 2, 1, 2)
    logits = gumbel.to_logits(z)[0].reshape(3, 2).T  # (positions, codes)
    expected = -(logits.log_softmax(1)[[0, 1], [2, 0]]).mean()
    assert gumbel.consistency(z, torch.tensor([[[2, 0]]])).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["vq", "gumbel", "none"])
def test_token_form_codes_are_a_row_of_global_tokens_and_decode_to_the_image_size(kind):
    model = build_dvae(kind, width=8, code_dim=2, num_codes=16, res_blocks=1, tokens=6)
    recon, q = model(torch.randn(3, 1, 28, 28))
    assert q.quantized.shape == (3, 2, 1, 6) and q.indices.shape == (3, 1, 6) and recon.shape == (3, 1, 28, 28)
    if kind != "none":
        assert model.decode(q.indices).shape == (3, 1, 28, 28)


def test_a_token_reads_the_whole_image_where_a_grid_code_reads_its_patch():
    def reach(model):  # which pixels move the encoder's first code vector
        x = torch.zeros(1, 1, 28, 28, requires_grad=True)
        model.encoder(x)[0, :, 0, 0].sum().backward()
        return x.grad[0, 0].abs() > 0
    torch.manual_seed(0)
    grid, tokens = reach(build_dvae("vq", width=8, code_dim=2, res_blocks=1)), \
        reach(build_dvae("vq", width=8, code_dim=2, res_blocks=1, tokens=4))
    assert grid[0, 0] and not grid[27, 27]  # the top-left code never sees the bottom-right corner
    assert tokens[0, 0] and tokens[27, 27] and tokens.all()
