"""Hypothesis strategies shared by the planning tests."""

from hypothesis import strategies as st

from lssgen_core.plan import count_extra_stages


@st.composite
def stage_geometry(draw, max_extra_stages: int, max_multiple: int) -> dict[str, int]:
    """A latent geometry (VAE factor, patch size) and a size that splits into up to
    ``1 + max_extra_stages`` stages: each side a multiple (up to ``max_multiple``) of what the
    smallest stage needs."""
    vae = draw(st.sampled_from([8, 16]))
    patch = draw(st.sampled_from([1, 2]))
    multiple = vae * patch * 2 ** draw(st.integers(0, max_extra_stages))
    return dict(
        height=multiple * draw(st.integers(1, max_multiple)),
        width=multiple * draw(st.integers(1, max_multiple)),
        vae_scale_factor=vae,
        patch_size=patch,
    )


def fits(args: dict) -> bool:
    """Whether the drawn size is a multiple of what its stage count needs."""
    extra = count_extra_stages(args["height"], args["width"], args["min_size"], args["start_sigma"])
    need = args["vae_scale_factor"] * args["patch_size"] * 2**extra
    return args["height"] % need == 0 and args["width"] % need == 0
