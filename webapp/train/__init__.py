"""Training: training sets built from approved reviews, fine-tuning runs on GPU workers, checkpoints served as models."""
