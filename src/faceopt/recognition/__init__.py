"""Face recognition: verification/identification metrics, margin losses and margin distillation."""
