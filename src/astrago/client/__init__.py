"""A typed Python client for the AstraGo API; the `astrago` CLI is built on it.

    from astrago.client import Client

    client = Client.from_environment()          # ASTRAGO_URL / ASTRAGO_TOKEN, else `astrago login`'s file
    job = client.submit(WorkloadSubmit(workspace="ml-a", command=["python", "train.py"]))
    done = client.wait(job.id)                   # the WorkloadOut once it has ended
    print(done.status, client.logs(job.id))

Requests and responses are the API's own models (`astrago.services.schemas`); errors are `ApiError`
(a problem+json answer) or `ServerUnreachable`."""

from astrago.client.client import TERMINAL_STATUSES, Client
from astrago.client.config import ClientConfig, config_path
from astrago.client.errors import ApiError, AstragoClientError, ServerUnreachable

__all__ = [
    "TERMINAL_STATUSES",
    "ApiError",
    "AstragoClientError",
    "Client",
    "ClientConfig",
    "ServerUnreachable",
    "config_path",
]
