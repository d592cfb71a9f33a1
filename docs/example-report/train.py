"""The short local training run behind this example report (see README.md)."""

import torch

from mtrl.runtime import RunConfig, train_local

torch.set_num_threads(1)
config = RunConfig(
    tasks=("classic/CartPole", "dmc/cartpole-balance", "text/tw-coin_collector-l1"),
    env_steps=1_500,
    warmup_env_steps=300,
    eval_every=750,
    eval_episodes=2,
    run_dir="runs/example",
)
result = train_local(config)
print(f"{result.env_steps} env steps, {result.updates} updates, {result.seconds:.0f} s")
for record in result.evaluations:
    print(record["env_steps"], record["returns"])
