"""Attention against PyTorch's references: scaled_dot_product_attention (enable_gqa) fed with
the module's own projections, and nn.MultiheadAttention with copied weights."""

import pytest
import torch
from torch.nn import functional as F

from nnisuite.models.attention import MultiHeadAttention

VARIANTS = [(8, 8), (8, 4), (8, 2), (8, 1)]  # MHA, GQA, GQA, MQA


def reference(m: MultiHeadAttention, q_in, k_in, v_in, **kw):
    b, tgt, e = q_in.shape
    q = m.q_proj(q_in).view(b, tgt, m.num_heads, m.head_dim).transpose(1, 2)
    k = m.k_proj(k_in).view(b, -1, m.num_kv_heads, m.head_dim).transpose(1, 2)
    v = m.v_proj(v_in).view(b, -1, m.num_kv_heads, m.head_dim).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **kw)
    return m.out_proj(out.transpose(1, 2).reshape(b, tgt, e))


@pytest.mark.parametrize("heads, kv_heads", VARIANTS)
@pytest.mark.parametrize("causal", [False, True])
def test_matches_sdpa(heads, kv_heads, causal):
    torch.manual_seed(heads * 10 + kv_heads)
    m = MultiHeadAttention(64, heads, kv_heads, bias=True)
    x = torch.randn(3, 10, 64)
    out, weights = m(x, x, x, is_causal=causal)
    torch.testing.assert_close(out, reference(m, x, x, x, is_causal=causal), atol=1e-5, rtol=1e-5)
    assert weights.shape == (3, heads, 10, 10)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, heads, 10))
    if causal:
        assert (weights.triu(1) == 0).all()


@pytest.mark.parametrize("heads, kv_heads", VARIANTS)
def test_cross_attention_with_mask_matches_sdpa(heads, kv_heads):
    torch.manual_seed(1)
    m = MultiHeadAttention(32, heads, kv_heads)
    q, kv = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    mask = torch.rand(2, 1, 5, 7) > 0.3
    mask[..., 0] = True  # every query sees at least one key
    out, _ = m(q, kv, kv, attn_mask=mask)
    torch.testing.assert_close(out, reference(m, q, kv, kv, attn_mask=mask), atol=1e-5, rtol=1e-5)


def test_mha_matches_torch_multiheadattention():
    torch.manual_seed(0)
    ours = MultiHeadAttention(48, 6, bias=True)
    ref = torch.nn.MultiheadAttention(48, 6, bias=True, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    x = torch.randn(2, 9, 48)
    out, weights = ours(x, x, x)
    ref_out, ref_weights = ref(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)


def test_query_head_uses_kv_head_h_div_group():
    """GQA with 4 query heads over 2 kv heads: heads 0, 1 read kv head 0, heads 2, 3 kv head 1.
    Give heads 0, 1 and 2 the same query weights: maps agree exactly when the kv head is
    shared (0 and 1), and differ when it is not (0 and 2)."""
    torch.manual_seed(2)
    m = MultiHeadAttention(16, 4, 2)
    x = torch.randn(1, 6, 16)
    d = m.head_dim
    with torch.no_grad():
        m.q_proj.weight[d : 2 * d] = m.q_proj.weight[0:d]
        m.q_proj.weight[2 * d : 3 * d] = m.q_proj.weight[0:d]
    _, w = m(x, x, x)
    torch.testing.assert_close(w[:, 0], w[:, 1])
    assert not torch.allclose(w[:, 0], w[:, 2], atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"embed_dim": 30, "num_heads": 8}, "not divisible by num_heads"),
        ({"embed_dim": 32, "num_heads": 8, "num_kv_heads": 3}, "not divisible by num_kv_heads"),
    ],
)
def test_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(**kwargs)


def test_bad_inputs():
    m = MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match="embed_dim"):
        m(torch.randn(1, 3, 8), torch.randn(1, 3, 8), torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match="mismatched"):
        m(torch.randn(1, 3, 16), torch.randn(1, 4, 16), torch.randn(1, 5, 16))


def test_parameter_and_cache_sizes():
    sizes = {kv: MultiHeadAttention(256, 8, kv) for kv in (8, 4, 1)}
    params = {kv: sum(p.numel() for p in m.parameters()) for kv, m in sizes.items()}
    assert params[8] == 4 * 256 * 256
    assert params[1] == 2 * 256 * 256 + 2 * 256 * 32
    assert [sizes[kv].kv_cache_per_token() for kv in (8, 4, 1)] == [512, 256, 64]
    assert [sizes[kv].variant for kv in (8, 4, 1)] == ["MHA", "GQA", "MQA"]
