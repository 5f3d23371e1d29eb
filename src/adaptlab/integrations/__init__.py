"""Bridges to other tools (MLflow), each an optional extra imported only when it is asked for."""
