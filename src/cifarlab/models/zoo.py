"""Imports every model family so that each registers its constructors."""

# One family per module; add a new family here.
from cifarlab.models import convnet  # noqa: E402,F401
from cifarlab.models import densenet  # noqa: E402,F401
from cifarlab.models import dla  # noqa: E402,F401
from cifarlab.models import dpn  # noqa: E402,F401
from cifarlab.models import lenet  # noqa: E402,F401
from cifarlab.models import preact_resnet  # noqa: E402,F401
from cifarlab.models import resnet  # noqa: E402,F401
from cifarlab.models import resnet9  # noqa: E402,F401
from cifarlab.models import resnext  # noqa: E402,F401
from cifarlab.models import vgg  # noqa: E402,F401
from cifarlab.models import wrn  # noqa: E402,F401
from cifarlab.models import airbench  # noqa: E402,F401
from cifarlab.models import bit  # noqa: E402,F401
