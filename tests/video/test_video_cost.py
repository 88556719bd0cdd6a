"""The cost model of cross-attention DiTs (Wan, LTX-Video): its rules, and its per-token terms
against the FLOPs torch counts on Wan's own transformer."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from lssgen_core.cost import CrossAttentionCost
from lssgen_diffusers.testing_video import tiny_wan_transformer

costs = st.builds(
    CrossAttentionCost,
    width=st.integers(1, 4096),
    depth=st.integers(1, 64),
    ffn_dim=st.integers(1, 16384),
    text_tokens=st.integers(0, 1024),
    patch_features=st.integers(0, 512),
)


@given(costs, st.integers(1, 100_000))
def test_cost_grows_with_tokens_and_attention_is_its_only_quadratic_term(cost, n):
    assert cost.flops(n + 1) > cost.flops(n) > 0
    second_difference = cost.flops(n + 1) - 2 * cost.flops(n) + cost.flops(n - 1)
    # Self-attention: 2 n^2 w multiply-adds per block (scores and mixing), 2 FLOPs each.
    assert second_difference == pytest.approx(2 * 4 * cost.depth * cost.width, rel=1e-6)


@given(costs, st.integers(1, 100_000))
def test_text_tokens_cost_cross_attention_and_their_own_keys_and_values(cost, n):
    """Unlike MMDiT's joint attention, text tokens add no per-token MLP or self-attention."""
    silent = CrossAttentionCost(
        cost.width, cost.depth, cost.ffn_dim, text_tokens=0, patch_features=cost.patch_features
    )
    w, text = cost.width, cost.text_tokens
    extra = 2.0 * cost.depth * (2 * n * text * w + 2 * text * w * w)
    assert cost.flops(n) - silent.flops(n) == pytest.approx(extra, rel=1e-9, abs=1e-6)


def _counted_matmul_flops(model, frames, height, width, text):
    """FLOPs torch's counter finds in the projections, MLPs and convolutions of one forward (the
    attention kernel is left out: this counter does not see the CPU fused kernel)."""
    latent = torch.randn(1, 16, frames, height, width)
    embeds = torch.randn(1, text, model.config.text_dim)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(
            hidden_states=latent,
            timestep=torch.tensor([500]),
            encoder_hidden_states=embeds,
            return_dict=False,
        )
    counts = counter.get_flop_counts()["Global"]
    return sum(v for op, v in counts.items() if "attention" not in str(op))


def test_the_per_token_terms_are_wan_transformers_own():
    heads, head_dim, layers, ffn, text = 2, 16, 2, 64, 20
    model = tiny_wan_transformer(heads=heads, head_dim=head_dim, layers=layers, ffn_dim=ffn)
    cost = CrossAttentionCost(heads * head_dim, layers, ffn, text_tokens=text, patch_features=128)

    def without_attention(n):
        attention = 2.0 * cost.depth * (2 * n * n * cost.width + 2 * n * text * cost.width)
        return cost.flops(n) - attention

    sizes = [(3, 8, 8), (3, 16, 16), (5, 16, 24)]
    counted = {f * h * w // 4: _counted_matmul_flops(model, f, h, w, text) for f, h, w in sizes}
    # What the model leaves out (the time and text embedders) does not grow with the tokens.
    offsets = {n: counted[n] - without_attention(n) for n in counted}
    assert len({round(v) for v in offsets.values()}) == 1
    smallest = min(counted)
    assert 0 <= offsets[smallest] < 0.05 * counted[smallest]
