"""One optimiser step of DGPOTrainer's loss on a fixed global batch, split over this launch's processes.

Run by tests/test_data_parallel.py as ``python data_parallel_script.py MODEL OUT`` (one process) and under
``torchrun --nproc_per_node 2`` (two gloo processes). Every process builds the same global batch; process r takes its
contiguous share of the rows and splits it into ``GA`` accumulation micro-batches. Each micro-batch runs the
trainer's own ``_compute_loss`` and backward, the gradients are averaged over processes (what DDP does) and the
trainer's ``log`` reduces the metrics. Rank 0 saves, per case, the gradient and the logged metrics.

With ``--drop-global-counts`` the trainer's aggregation is replaced by the per-micro-batch one (each micro-batch
divides by its own token or sequence count, then by GA): the negative control, which must break invariance.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist

B, P, C = 8, 5, 7  # global sequences, prompt tokens, completion tokens
AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def global_batch(model, trainer, empty_row: bool) -> dict:
    """The same batch on every process: random tokens, ragged completions, Â = 0 rows, ratios in every region."""
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    prompt_ids = torch.randint(3, vocab, (B, P), generator=g)
    completion_ids = torch.randint(3, vocab, (B, C), generator=g)
    lengths = torch.tensor([7, 2, 5, 7, 1, 6, 3, 7])
    completion_mask = (torch.arange(C).unsqueeze(0) < lengths.unsqueeze(1)).long()
    if empty_row:
        completion_mask[2] = 0  # e.g. a truncated completion under mask_truncated_completions
    advantages = torch.randn(B, generator=g)
    advantages[[1, 6]] = 0.0
    input_ids = torch.cat([prompt_ids, completion_ids], 1)
    attention = torch.cat([torch.ones(B, P, dtype=torch.long), completion_mask], 1)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(model, input_ids, attention, C)
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones(B, P, dtype=torch.long),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": advantages,
        "old_per_token_logps": logps + 0.4 * torch.randn(B, C, generator=g),
    }


def rows(batch: dict, start: int, stop: int) -> dict:
    return {key: value[start:stop] for key, value in batch.items()}


def one_step(trainer, batch: dict, accumulation: int) -> tuple[torch.Tensor, dict]:
    """This process's rows in ``accumulation`` micro-batches: the averaged gradient and the logged metrics."""
    world, rank = trainer.accelerator.num_processes, trainer.accelerator.process_index
    local = rows(batch, rank * B // world, (rank + 1) * B // world)
    # The global counts exactly as TRL and DGPOTrainer compute them from the local generation batch.
    local["num_items_in_batch"] = trainer.accelerator.gather(local["completion_mask"].sum()).sum()
    local["num_seqs_in_batch"] = trainer._count_sequences(local)
    trainer.args.steps_per_generation = accumulation
    trainer.current_gradient_accumulation_steps = accumulation
    model = trainer.model
    model.zero_grad(set_to_none=True)
    size = B // world // accumulation
    for part in range(accumulation):
        micro = {k: v[part * size : (part + 1) * size] if v.dim() else v for k, v in local.items()}
        trainer._compute_loss(model, micro).backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]).double()
    if world > 1:
        dist.all_reduce(grad)
        grad /= world
    trainer.log({})
    return grad, dict(trainer.state.log_history[-1])


def drop_global_counts(trainer_cls) -> None:
    """The negative control: per-micro-batch normalisation, the bug this test guards against."""
    from dgpo.aggregation import aggregate

    def local_aggregate(self, per_token_loss, mask, inputs, share):
        loss = aggregate(per_token_loss, mask, self.args.aggregation, norm_length=self.max_completion_length)
        return loss / self.current_gradient_accumulation_steps

    trainer_cls._aggregate = local_aggregate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--accumulation", type=int, nargs="+", default=[1])
    parser.add_argument("--drop-global-counts", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from datasets import Dataset

    from dgpo import distributed
    from dgpo.integrations.trl import DGPOConfig, DGPOTrainer
    from dgpo.tiny import load_tokenizer

    if args.drop_global_counts:
        drop_global_counts(DGPOTrainer)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    config = DGPOConfig(
        output_dir=os.path.join(args.out, "trainer"),
        per_device_train_batch_size=B // world,
        num_generations=4,
        max_completion_length=C,
        report_to=[],
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = DGPOTrainer(
        model=args.model,
        reward_funcs=[lambda completions, **kwargs: [0.0] * len(completions)],
        args=config,
        train_dataset=Dataset.from_list([{"prompt": "1 + 1 = ?"}] * 8),
        processing_class=load_tokenizer(args.model),
    )
    trainer.model.train()
    results = {}
    for aggregation in AGGREGATIONS:
        trainer.args.aggregation = aggregation
        for empty_row in (False, True):
            batch = global_batch(trainer.model, trainer, empty_row)
            for accumulation in args.accumulation:
                grad, logged = one_step(trainer, batch, accumulation)
                results[(aggregation, empty_row, world, accumulation)] = {"grad": grad, "logged": logged}
    if trainer.accelerator.is_main_process:
        torch.save(results, os.path.join(args.out, f"results-{world}.pt"))
    distributed.close()


if __name__ == "__main__":
    main()
