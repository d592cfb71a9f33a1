"""The multi-task world model: encoders, causal MoE transformer with KV cache, heads, DPS.

Usage sketch:

model = WorldModel(task_set, preset("small"))
with torch.inference_mode():                       # search
    root = model.initial_inference(obs_batch)      # ObsBatch of any mix of tasks
    child = model.recurrent_inference(root.state, actions)   # Actions or an index tensor
losses = model.losses(unrolled_batch)              # learner: per-task Losses
losses.total().backward(); model.update_target()   # or aggregate losses.per_task()
dps = DPSStages(model); dps.set_stage(1, optimizer)  # Dynamic Parameter Scaling
"""

from mtrl.world_models.config import PRESETS, WorldModelConfig, preset
from mtrl.world_models.dps import DPSStages
from mtrl.world_models.losses import Losses
from mtrl.world_models.model import WorldModel
from mtrl.world_models.support import h, h_inverse, scalar_to_support, support_to_scalar
from mtrl.world_models.types import (
    Actions,
    LatentState,
    Observations,
    Prediction,
    SequenceObs,
    TaskGroups,
    UnrolledBatch,
    observations_from_batch,
)

__all__ = [
    "PRESETS",
    "Actions",
    "DPSStages",
    "LatentState",
    "Losses",
    "Observations",
    "Prediction",
    "SequenceObs",
    "TaskGroups",
    "UnrolledBatch",
    "WorldModel",
    "WorldModelConfig",
    "h",
    "h_inverse",
    "observations_from_batch",
    "preset",
    "scalar_to_support",
    "support_to_scalar",
]
