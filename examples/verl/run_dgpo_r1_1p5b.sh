#!/usr/bin/env bash
# The paper's 1.5B setup on stock verl 0.9 (NEEDS GPUs: verl's rollouts are vLLM/SGLang servers):
# DeepSeek-R1-Distill-Qwen-1.5B on DAPO-Math-17k, DGPO with (n, m) = (2, 2), ε = 0.2/0.2, token-mean, no KL,
# no entropy bonus. dgpo must be installed in the same environment as verl (`pip install dgpo[verl]`): its
# `verl.plugins` entry point registers loss_mode=dgpo in the driver and in every Ray worker.
#
#   python examples/verl/prepare_data.py --train $DGPO_DATA_DIR/dapo_math_17k.jsonl --val aime24 --out data/verl
#   bash examples/verl/run_dgpo_r1_1p5b.sh [extra hydra overrides]
set -euo pipefail
DATA=${DATA:-data/verl}
NGPUS=${NGPUS:-8}
REWARD_FILE=$(python -c "import dgpo.rewards.verifier as m; print(m.__file__)")

OVERRIDES=(
# BEGIN OVERRIDES
  algorithm.adv_estimator=grpo
  algorithm.use_kl_in_reward=False
  data.train_files=${DATA}/train.parquet
  data.val_files=${DATA}/val.parquet
  data.train_batch_size=128
  data.max_prompt_length=1024
  data.max_response_length=8192
  actor_rollout_ref.model.path=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
  actor_rollout_ref.actor.optim.lr=1e-6
  actor_rollout_ref.actor.ppo_mini_batch_size=64
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4
  actor_rollout_ref.actor.use_kl_loss=False
  actor_rollout_ref.actor.entropy_coeff=0
  actor_rollout_ref.actor.loss_agg_mode=token-mean
  actor_rollout_ref.actor.clip_ratio_low=0.2
  actor_rollout_ref.actor.clip_ratio_high=0.2
  actor_rollout_ref.actor.policy_loss.loss_mode=dgpo
  actor_rollout_ref.actor.policy_loss._target_=dgpo.integrations.verl.DGPOPolicyLossConfig
  +actor_rollout_ref.actor.policy_loss.dgpo_n=2
  +actor_rollout_ref.actor.policy_loss.dgpo_m=2
  actor_rollout_ref.rollout.name=vllm
  actor_rollout_ref.rollout.n=8
  actor_rollout_ref.rollout.temperature=1.0
  actor_rollout_ref.rollout.tensor_model_parallel_size=1
  actor_rollout_ref.rollout.gpu_memory_utilization=0.6
  reward.custom_reward_function.path=${REWARD_FILE}
  reward.custom_reward_function.name=compute_score
  trainer.n_gpus_per_node=${NGPUS}
  trainer.nnodes=1
  trainer.total_epochs=1
  trainer.project_name=dgpo
  trainer.experiment_name=r1-distill-1.5b-dgpo-n2-m2
  trainer.logger=[console]
# END OVERRIDES
)

python3 -m verl.trainer.main_ppo "${OVERRIDES[@]}" "$@"
