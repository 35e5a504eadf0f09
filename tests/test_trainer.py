"""DGPOTrainer against TRL's own GRPOTrainer on the same batch (float32, 1e-6), and its config checks."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from dgpo.advantages import compute_advantages
from dgpo.integrations.trl import DGPOConfig, DGPOTrainer
from dgpo.integrations.trl_logprob_tiles import CPU_TOKEN_TILE
from dgpo.tiny import load_tokenizer

B, P, C = 8, 5, 7  # sequences, prompt tokens, completion tokens


def length_reward(completions, **kwargs):
    return [float(len(c) % 3) for c in completions]


def make_trainer(cls, config_cls, model_dir, tmp_path, **kwargs):
    args = config_cls(
        output_dir=str(tmp_path / cls.__name__),
        per_device_train_batch_size=B,
        num_generations=4,
        max_completion_length=C,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        **kwargs,
    )
    dataset = Dataset.from_list([{"prompt": f"{i} + 1 = ?", "answer": str(i + 1)} for i in range(8)])
    trainer = cls(
        model=str(model_dir),
        reward_funcs=[length_reward],
        args=args,
        train_dataset=dataset,
        processing_class=load_tokenizer(model_dir),
    )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def make_inputs(trainer, seed=0):
    g = torch.Generator().manual_seed(seed)
    vocab = trainer.model.config.vocab_size
    prompt_ids = torch.randint(3, vocab, (B, P), generator=g)
    completion_ids = torch.randint(3, vocab, (B, C), generator=g)
    completion_mask = torch.ones(B, C, dtype=torch.long)
    completion_mask[1, 5:] = 0
    completion_mask[6, 3:] = 0
    input_ids = torch.cat([prompt_ids, completion_ids], 1)
    attention = torch.cat([torch.ones(B, P, dtype=torch.long), completion_mask], 1)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, input_ids, attention, C)
    # Old log-probs 0.4 nats away on average: ratios far enough from 1 to hit every region.
    old = logps + 0.4 * torch.randn(B, C, generator=g)
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones(B, P, dtype=torch.long),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.randn(B, generator=g),
        "old_per_token_logps": old,
        "num_items_in_batch": completion_mask.sum(),
        "num_seqs_in_batch": (completion_mask.sum(1) > 0).sum(),
    }


def loss_and_grads(trainer, inputs):
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]


PARITY = [
    ({"loss_type": "dapo"}, {"objective": "grpo", "aggregation": "token-mean"}),
    ({"loss_type": "dapo", "epsilon_high": 0.28}, {"objective": "dapo", "aggregation": "token-mean"}),
    # TRL's cispo caps r at epsilon_high (absolute) with no lower bound: eps_low >= 1, eps_high = cap − 1.
    (
        {"loss_type": "cispo", "epsilon_high": 5.0},
        {"objective": "cispo", "objective_kwargs": {"eps_low": 1.0, "eps_high": 4.0}, "aggregation": "token-mean"},
    ),
    ({"loss_type": "sapo"}, {"objective": "sapo", "aggregation": "seq-mean-token-mean"}),
]


@pytest.mark.parametrize(("trl_kwargs", "dgpo_kwargs"), PARITY, ids=["grpo", "dapo", "cispo", "sapo"])
def test_parity_with_trl_builtin_losses(tiny_model_dir, tmp_path, trl_kwargs, dgpo_kwargs):
    reference = make_trainer(GRPOTrainer, GRPOConfig, tiny_model_dir, tmp_path, **trl_kwargs)
    ours = make_trainer(DGPOTrainer, DGPOConfig, tiny_model_dir, tmp_path, num_iterations=1, **dgpo_kwargs)
    inputs = make_inputs(reference)
    ref_loss, ref_grads = loss_and_grads(reference, inputs)
    our_loss, our_grads = loss_and_grads(ours, inputs)
    torch.testing.assert_close(our_loss, ref_loss, rtol=1e-6, atol=1e-6)
    assert len(our_grads) == len(ref_grads) > 0
    for ours_g, ref_g in zip(our_grads, ref_grads, strict=True):
        torch.testing.assert_close(ours_g, ref_g, rtol=1e-6, atol=1e-6)
    ours.log({})
    logged = ours.state.log_history[-1]
    assert {"region/ln", "region/zero_adv", "weight/vs_pg_max", "tokens/active", "loss/policy", "entropy"} <= set(
        logged
    )
    assert logged["loss/policy"] == pytest.approx(our_loss.item(), rel=1e-6)


def test_dgpo_differs_from_grpo_only_on_ln_and_hp_tokens(tiny_model_dir, tmp_path):
    grads = {}
    for objective in ("grpo", "dgpo"):
        trainer = make_trainer(DGPOTrainer, DGPOConfig, tiny_model_dir, tmp_path, objective=objective)
        inputs = make_inputs(trainer)
        leaf = {}

        def fake_logps(model, input_ids, attention_mask, logits_to_keep, _inner=trainer, leaf=leaf, **kwargs):
            real, entropies, aux = type(_inner)._get_per_token_logps_and_entropies(
                _inner, model, input_ids, attention_mask, logits_to_keep, **kwargs
            )
            leaf["logps"] = real.detach().requires_grad_(True)
            return leaf["logps"], entropies, aux

        trainer._get_per_token_logps_and_entropies = fake_logps
        trainer._compute_loss(trainer.model, inputs).backward()
        grads[objective] = leaf["logps"].grad
        logps = leaf["logps"].detach()
    ratio = torch.exp(logps - inputs["old_per_token_logps"])
    adv = inputs["advantages"].unsqueeze(1)
    mask = inputs["completion_mask"].bool()
    ln = (ratio < 0.8) & (adv < 0) & mask
    hp = (ratio > 1.2) & (adv > 0) & mask
    assert ln.any() and hp.any()
    same = ~(ln | hp)
    torch.testing.assert_close(grads["dgpo"][same], grads["grpo"][same], rtol=1e-6, atol=1e-9)
    assert (grads["grpo"][ln | hp] == 0).all()  # hard clipping drops them
    assert (grads["dgpo"][ln | hp] != 0).all()  # DGPO keeps a decayed gradient


def test_advantages_are_recomputed_by_dgpo(tiny_model_dir, tmp_path):
    for method in ("grpo", "rloo"):
        trainer = make_trainer(DGPOTrainer, DGPOConfig, tiny_model_dir, tmp_path, advantage=method)
        batch = [trainer.train_dataset[i] for i in range(2) for _ in range(4)]  # 2 prompts × G = 4
        output = trainer._generate_and_score_completions(batch)
        rewards = trainer._captured_rewards[:, 0]
        torch.testing.assert_close(output["advantages"], compute_advantages(rewards, 4, method))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "nope"}, "unknown objective 'nope'; valid objectives: pg, grpo"),
        ({"objective_kwargs": {"n": -1}}, r"DGPOLossConfig.n must be > 0"),
        ({"objective_kwargs": {"k": 1}}, r"unknown parameter\(s\) k for objective 'dgpo'"),
        ({"advantage": "ppo"}, "unknown advantage 'ppo'"),
        ({"aggregation": "mean"}, "unknown aggregation 'mean'"),
        ({"use_liger_kernel": True}, "use_liger_kernel=True is not supported"),
        (
            {"loss_type": "grpo"},
            "DGPOConfig.loss_type='grpo' is not used by the dgpo loss; use objective and aggregation",
        ),
        ({"scale_rewards": "batch"}, "use advantage instead"),
        ({"delta": 2.0}, "dual_clip_c"),
        ({"importance_sampling_level": "sequence"}, 'objective="gspo"'),
        ({"objective": "sapo", "epsilon": 0.3}, "DGPOConfig.epsilon=0.3 has no meaning for objective 'sapo'"),
        ({"epsilon": 0.3, "objective_kwargs": {"eps_low": 0.1}}, "conflicts with objective_kwargs eps_low=0.1"),
    ],
)
def test_config_refuses_bad_or_replaced_options(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DGPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, **kwargs)


def test_trl_epsilon_maps_onto_the_objective(tmp_path):
    cfg = DGPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, epsilon=0.1, epsilon_high=0.3)
    assert cfg.build_objective().config.eps_low == 0.1 and cfg.build_objective().config.eps_high == 0.3
    assert cfg.num_iterations == 2  # off-policy by default


def test_trainer_needs_a_dgpo_config(tiny_model_dir, tmp_path):
    with pytest.raises(TypeError, match="DGPOTrainer needs a DGPOConfig, got GRPOConfig"):
        make_trainer(DGPOTrainer, GRPOConfig, tiny_model_dir, tmp_path)


def test_log_probs_never_materialise_the_logits_and_match_full_logits(tiny_model_dir, tmp_path):
    """DGPOTrainer's log-probs and entropies (TRL's fused LM head: the hidden states projected onto the LM head's
    weight tile by tile) never run the LM head over the batch — no (B, T, V) logits — and equal the plain
    full-logits float32 path in value and in every parameter gradient."""
    # float32 throughout (TRL's config turns on bf16 autocast by default, even on CPU).
    trainer = make_trainer(
        DGPOTrainer, DGPOConfig, tiny_model_dir, tmp_path, objective="dgpo", temperature=0.7, bf16=False
    )
    inputs = make_inputs(trainer)
    model = trainer.model
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    mask = inputs["completion_mask"].float()
    coefficients = torch.randn(B, C, generator=torch.Generator().manual_seed(1))

    def loss_of(logps, entropies):
        # Everything DGPOTrainer differentiates: the objective on log π and an entropy term.
        per_token, _ = trainer.objective(logps, inputs["old_per_token_logps"], inputs["advantages"], mask)
        return (per_token * mask).sum() + (coefficients * entropies * mask).sum()

    def gradients(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    lm_head = model.get_output_embeddings()
    logits_shapes = []  # the output of every call of the LM head: the model's only way to build its logits
    hook = lm_head.register_forward_hook(lambda module, args, output: logits_shapes.append(tuple(output.shape)))
    try:
        logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
            model, input_ids, attention, C, compute_entropy=True
        )
        chunked_grads = gradients(loss_of(logps, entropies))
        assert logits_shapes == []
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, -C - 1 : -1].float() / 0.7
        assert logits_shapes == [(B, P + C, lm_head.weight.shape[0])]  # the plain forward does build them
    finally:
        hook.remove()
    log_probs = torch.log_softmax(logits, dim=-1)
    plain_logps = log_probs.gather(-1, inputs["completion_ids"].unsqueeze(-1)).squeeze(-1)
    plain_entropies = -(log_probs.exp() * log_probs).sum(-1)
    active = mask.bool()
    torch.testing.assert_close(logps[active], plain_logps[active], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(entropies[active], plain_entropies[active], rtol=1e-5, atol=1e-5)
    plain_grads = gradients(loss_of(plain_logps, plain_entropies))
    assert chunked_grads.keys() == plain_grads.keys() and "model.embed_tokens.weight" in plain_grads
    for name, grad in plain_grads.items():
        # float32 sums in a different order: agree to 1e-4 of each tensor's scale.
        scale = grad.abs().max().item()
        torch.testing.assert_close(chunked_grads[name], grad, rtol=1e-4, atol=1e-4 * scale, msg=name)


def test_training_step_uses_the_cpu_token_tile_in_forward_and_backward(tiny_model_dir, tmp_path, monkeypatch):
    # The kernel (trl.kernels' public ChunkedLogProbFunction) has no way to report the token tile it ran with, so
    # its forward and backward read the one thing dgpo's token_tile sets: TRL's module constant TOKEN_CHUNK_SIZE,
    # listed with this test in dgpo.integrations.private_api.
    import trl.kernels
    import trl.kernels.chunked_logprob as kernel

    seen = {"forward": set(), "backward": set()}
    forward, backward = trl.kernels.ChunkedLogProbFunction.forward, trl.kernels.ChunkedLogProbFunction.backward

    def spy_forward(ctx, *args):
        seen["forward"].add(kernel.TOKEN_CHUNK_SIZE)
        return forward(ctx, *args)

    def spy_backward(ctx, *grads):
        seen["backward"].add(kernel.TOKEN_CHUNK_SIZE)
        return backward(ctx, *grads)

    monkeypatch.setattr(trl.kernels.ChunkedLogProbFunction, "forward", staticmethod(spy_forward))
    monkeypatch.setattr(trl.kernels.ChunkedLogProbFunction, "backward", staticmethod(spy_backward))
    trainer = make_trainer(DGPOTrainer, DGPOConfig, tiny_model_dir, tmp_path, max_steps=1, save_strategy="no")
    trainer.train()
    assert seen == {"forward": {CPU_TOKEN_TILE}, "backward": {CPU_TOKEN_TILE}}
    assert kernel.TOKEN_CHUNK_SIZE == 4096  # restored after the step
    with pytest.raises(ValueError, match="logprob_token_tile must be a positive integer"):
        DGPOConfig(output_dir=str(tmp_path), logprob_token_tile=0)
