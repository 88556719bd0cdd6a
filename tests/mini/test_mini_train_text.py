"""lssgen-mini's text side: word tokenizer, frozen CLIPs that keep captions apart, null T5."""

import pytest
import torch

from lssgen.mini import perturbations, scene_for_index
from lssgen.mini.train_text import (
    STOCK_T5_TOKENS,
    TextConfig,
    build_text,
    encode_prompts,
    grammar_words,
    learn_merges,
    load_text,
)

TINY = TextConfig(hidden_size=16, intermediate_size=32)
BYTE_TOKENS = 512  # ids below this are CLIP's byte-level symbols


# Tiny tensors: one intra-op thread is faster and keeps kernels the same in every run.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def text():
    return build_text(TINY)


def test_every_grammar_word_is_one_token(text):
    for tokenizer in (text.tokenizer, text.tokenizer_2):
        for word in grammar_words():
            ids = tokenizer(word, add_special_tokens=False).input_ids
            assert len(ids) == 1, word


def test_learnt_merges_keep_competing_words_whole():
    # "re" (from "red") must not split "green" or "three": plain BPE training handles it.
    merges = learn_merges(["red", "green", "three", "tree"])
    assert ("g", "re") not in merges or merges.index(("r", "e")) < merges.index(("g", "re"))
    assert len({left + right for left, right in merges} & {"red</w>", "green</w>"}) == 2


def test_captions_fit_the_context_and_other_text_falls_back_to_bytes(text):
    tokenizer = text.tokenizer
    for index in range(60):
        caption = scene_for_index(0, index)[1].text
        ids = tokenizer(caption).input_ids
        assert len(ids) <= tokenizer.model_max_length
        assert len(ids) == len(caption.split()) + 2  # start, one token per word, end
    ids = tokenizer("A Zebra!", add_special_tokens=False).input_ids
    assert min(ids) < BYTE_TOKENS  # unknown words are spelt in bytes, never dropped
    assert tokenizer.decode(ids).split()[:2] == ["a", "zebra"]


def test_null_t5_reads_no_text_and_outputs_zeros(text):
    for prompt in ("a red circle to the left of a blue star", "", "anything at all " * 40):
        ids = text.tokenizer_3([prompt], padding="longest", return_tensors="pt").input_ids
        assert ids.tolist() == [[text.tokenizer_3.eos_token_id]]
    ids = text.tokenizer_3(
        ["a red circle"], padding="max_length", max_length=STOCK_T5_TOKENS, return_tensors="pt"
    ).input_ids
    output = text.text_encoder_3(ids)[0]
    assert output.shape == (1, STOCK_T5_TOKENS, text.joint_attention_dim)
    assert not output.any()


def test_one_word_edits_move_the_prompt_embedding_well_away():
    text = build_text(TextConfig())  # the shipped size: what the transformer has to tell apart
    for index in range(12):
        caption = scene_for_index(0, index)[1]
        variants = [variant.text for _, variant in perturbations(caption)]
        embeds, pooled = encode_prompts(text, [caption.text, *variants])
        moved = (embeds[1:] - embeds[:1]).flatten(1).norm(dim=1) / embeds[0].norm()
        assert moved.min() > 0.1, caption.text
        assert (pooled[1:] != pooled[:1]).any(dim=1).all()


def test_encoding_shapes_and_the_t5_zero_tokens(text):
    embeds, pooled = encode_prompts(text, ["a red circle", ""], t5_tokens=3)
    assert embeds.shape == (2, TINY.max_length + 3, TINY.joint_attention_dim)
    assert pooled.shape == (2, TINY.pooled_projection_dim)
    assert not embeds[:, TINY.max_length :].any()
    assert embeds[0, : TINY.max_length].ne(embeds[1, : TINY.max_length]).any()


def test_build_is_seeded_and_save_load_round_trips(text, tmp_path):
    again = build_text(TINY)
    other = build_text(TextConfig(hidden_size=16, intermediate_size=32, seed=1))
    prompts = ["two blue squares", "a star above a circle", ""]
    reference = encode_prompts(text, prompts)
    assert all(torch.equal(a, b) for a, b in zip(reference, encode_prompts(again, prompts)))
    assert not torch.equal(reference[0], encode_prompts(other, prompts)[0])
    text.save(tmp_path)
    loaded = load_text(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(reference, encode_prompts(loaded, prompts)))
    with pytest.raises(FileNotFoundError, match="text stage"):
        load_text(tmp_path / "missing")
