"""The downstream defect classifier (ResNet-50, or the demo's head on frozen Inception feature maps)."""

from diag.classify.data import training_set, evaluation_set
from diag.classify.train import TrainConfig, TrainResult, train_classifier

__all__ = ["TrainConfig", "TrainResult", "evaluation_set", "train_classifier", "training_set"]
