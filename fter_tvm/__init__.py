"""fter-tvm: compile fully ternary Vision Transformers for the ESP32-S3 and x86 with TVM."""
from . import models

__version__ = "0.1.0"
