#!/usr/bin/env bash
# verl's own trainer, end to end on a CPU, with the dgpo loss: "try your verl config on a laptop before renting GPUs".
#
#   bash examples/verl/cpu_e2e.sh OUT_DIR [hydra overrides...]
#
# Runs `python -m verl.trainer.main_ppo` (RayPPOTrainer: Ray workers, the hf_cpu rollout server and agent loop, the
# reward loop, GRPO advantages, old log-probs, the FSDP2 actor update with loss_mode=dgpo, weight sync, checkpoints)
# on a tiny Qwen2 learning single-digit a + b. The model and the parquet task are built in OUT_DIR/task when missing;
# OUT_DIR/metrics.jsonl gets one JSON object per training step (verl's file logger: {"step": N, "data": {...}}).
# Overrides pass through to verl unchanged and win over the CPU recipe (dgpo.integrations.verl_cpu.launch), e.g.
#   actor_rollout_ref.actor.policy_loss.loss_mode=dgpo_cispo  trainer.total_training_steps=40  trainer.n_gpus_per_node=2
# (n_gpus_per_node=2: two FSDP2 ranks and two rollout replicas, on logical GPUs). A second run into the same OUT_DIR
# with trainer.save_freq set resumes from the latest checkpoint (trainer.resume_mode=auto).
#
# Python: the checkout's .venv-verl (made by `make test`), or $VERL_PYTHON.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=${VERL_PYTHON:-$here/.venv-verl/bin/python}
if [[ $# -ge 1 && ( $1 == -h || $1 == --help ) ]]; then
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 0
fi
if [[ $# -lt 1 || $1 == *=* ]]; then
  echo "error: usage: cpu_e2e.sh OUT_DIR [hydra overrides...] (OUT_DIR first; --help explains)" >&2
  exit 2
fi
if [[ ! -x $python ]]; then
  echo "error: no verl environment at $python: run 'make test' (it builds .venv-verl) or set VERL_PYTHON" >&2
  exit 2
fi
if ! "$python" -c "import verl, dgpo" 2>/dev/null; then
  echo "error: $python cannot import verl and dgpo: install both there (see docs/verl.md, Install)" >&2
  exit 2
fi
exec "$python" -m dgpo.integrations.verl_cpu.launch "$@"
