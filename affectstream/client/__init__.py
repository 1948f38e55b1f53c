"""Typed messages of affectstream runs from an MQTT broker, for the apps that subscribe.

```python
from affectstream.client import Client

async with Client("mqtt://127.0.0.1:1883/affectstream", kinds=["burst"]) as client:
    async for msg in client:          # Received: kind, camera, track_id, payload (a model)
        print(msg.camera, msg.payload.text)
    client.state.emotions()           # latest emotion per face, from retained + live messages
```

:class:`SyncClient` is the blocking form for scripts. The payload models are
:mod:`affectstream.schemas`; docs/messages.md lists every field.
"""

from affectstream.client.received import Received
from affectstream.client.state import CameraState, State
from affectstream.client.stream import Client, Filters
from affectstream.client.sync import SyncClient

__all__ = ["CameraState", "Client", "Filters", "Received", "State", "SyncClient"]
