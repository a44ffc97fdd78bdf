"""Detection: AmphibianDetector, the pixel baseline and detection metrics."""
