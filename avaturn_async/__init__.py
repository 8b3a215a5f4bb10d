"""avaturn_async: an async Python SDK for the Avaturn 3D-avatar API.

The public names are re-exported here; modules starting with ``_`` are private.
Webhooks live in :mod:`avaturn_async.webhooks`, the emulator and test helpers in
:mod:`avaturn_async.testing`.

Re-exports are lazy (PEP 562): ``import avaturn_async`` loads almost nothing, and
each name loads its module on first use, so ``import avaturn_async.webhooks``
does not load aiohttp or the client. Type checkers see the imports below.
"""

from __future__ import annotations

import os as _os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._lazy import lazy_exports as _lazy_exports
from ._version import __version__ as __version__

if _os.environ.get("AVATURN_LOG"):  # logging is loaded only when asked for (cold starts)
    from ._logs import log_to_stderr_from_environment as _log_to_stderr

    _log_to_stderr(_os.environ)

if TYPE_CHECKING:
    from ._adaptive import AdaptiveConcurrency as AdaptiveConcurrency
    from ._adaptive import AdaptiveLimiter as AdaptiveLimiter
    from ._adaptive import InProcessGate as InProcessGate
    from ._adaptive import RateLimitGate as RateLimitGate
    from ._client import DEFAULT_BASE_URL as DEFAULT_BASE_URL
    from ._client import DEFAULT_MAX_DOWNLOAD_BYTES as DEFAULT_MAX_DOWNLOAD_BYTES
    from ._client import AvaturnClient as AvaturnClient
    from ._client import ClientOptions as ClientOptions
    from ._clock import Clock as Clock
    from ._decide import Decision as Decision
    from ._decide import decide as decide
    from ._download_errors import DownloadError as DownloadError
    from ._download_errors import DownloadTooLargeError as DownloadTooLargeError
    from ._download_errors import IncompleteDownloadError as IncompleteDownloadError
    from ._errors import APIError as APIError
    from ._errors import AuthenticationError as AuthenticationError
    from ._errors import AvatarFailedError as AvatarFailedError
    from ._errors import AvaturnError as AvaturnError
    from ._errors import BadRequestError as BadRequestError
    from ._errors import CertificateError as CertificateError
    from ._errors import ClientClosedError as ClientClosedError
    from ._errors import ConfigurationError as ConfigurationError
    from ._errors import ConflictError as ConflictError
    from ._errors import ConnectError as ConnectError
    from ._errors import ConnectionLostError as ConnectionLostError
    from ._errors import EventLoopError as EventLoopError
    from ._errors import ExportFailedError as ExportFailedError
    from ._errors import GoneError as GoneError
    from ._errors import InvalidRequestError as InvalidRequestError
    from ._errors import JobFailedError as JobFailedError
    from ._errors import JobTimeoutError as JobTimeoutError
    from ._errors import NotFoundError as NotFoundError
    from ._errors import PhotoError as PhotoError
    from ._errors import RateLimitError as RateLimitError
    from ._errors import RenderFailedError as RenderFailedError
    from ._errors import RequestTimeoutError as RequestTimeoutError
    from ._errors import ResponseDecodeError as ResponseDecodeError
    from ._errors import SchemaVersionError as SchemaVersionError
    from ._errors import ServerError as ServerError
    from ._errors import StorageError as StorageError
    from ._errors import StorageUnavailableError as StorageUnavailableError
    from ._errors import TransportError as TransportError
    from ._errors import UnprocessableEntityError as UnprocessableEntityError
    from ._errors import UnsafeURLError as UnsafeURLError
    from ._errors import ValidationErrorItem as ValidationErrorItem
    from ._errors import WebhookError as WebhookError
    from ._errors import WebhookInputError as WebhookInputError
    from ._errors import WebhookParseError as WebhookParseError
    from ._errors import WebhookPayloadTooLargeError as WebhookPayloadTooLargeError
    from ._errors import WebhookVerificationError as WebhookVerificationError
    from ._hub import EventHub as EventHub
    from ._hub import EventSource as EventSource
    from ._hub import HubChannel as HubChannel
    from ._hub import InMemoryHubChannel as InMemoryHubChannel
    from ._jobs import AvatarJob as AvatarJob
    from ._jobs import ExportJob as ExportJob
    from ._jobs import RenderJob as RenderJob
    from ._models import AgeModel as AgeModel
    from ._models import AssetSlot as AssetSlot
    from ._models import AssetSlots as AssetSlots
    from ._models import AssetSlotWithColor as AssetSlotWithColor
    from ._models import AvatarListItem as AvatarListItem
    from ._models import BodyType as BodyType
    from ._models import BoneScale as BoneScale
    from ._models import CreateOrEditExistingSessionConfig as CreateOrEditExistingSessionConfig
    from ._models import CreateSessionConfig as CreateSessionConfig
    from ._models import DownloadedFile as DownloadedFile
    from ._models import EditExistingSessionConfig as EditExistingSessionConfig
    from ._models import ExportStatus as ExportStatus
    from ._models import ExternalAvatarCustomization as ExternalAvatarCustomization
    from ._models import NewAvatarResponse as NewAvatarResponse
    from ._models import NewExportResponse as NewExportResponse
    from ._models import NewSessionResponse as NewSessionResponse
    from ._models import NewUserResponse as NewUserResponse
    from ._models import PhotoUploadResult as PhotoUploadResult
    from ._models import RenderFormat as RenderFormat
    from ._models import RenderResult as RenderResult
    from ._models import RenderStatus as RenderStatus
    from ._models import ScanStatus as ScanStatus
    from ._models import SessionConfig as SessionConfig
    from ._observe import ErrorInfo as ErrorInfo
    from ._observe import RateLimitInfo as RateLimitInfo
    from ._observe import RequestInfo as RequestInfo
    from ._observe import ResponseInfo as ResponseInfo
    from ._observe import ResponseList as ResponseList
    from ._observe import ResponseMetadata as ResponseMetadata
    from ._observe import RetryInfo as RetryInfo
    from ._observe import response_of as response_of
    from ._pacing import RateBudget as RateBudget
    from ._pacing import TokenBucket as TokenBucket
    from ._photos import PhotoInput as PhotoInput
    from ._photos import PhotoSource as PhotoSource
    from ._photos import PhotoUpload as PhotoUpload
    from ._photos import prepare_upload as prepare_upload
    from ._requests import Request as Request
    from ._requests import Response as Response
    from ._retry import FailureKind as FailureKind
    from ._retry import RetryPolicy as RetryPolicy
    from ._transport import AiohttpTransport as AiohttpTransport
    from ._transport import Timeouts as Timeouts
    from ._transport import Transport as Transport

# One line above per public name: __all__ and the lazy table are read from them.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__all__: list[str]
__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    __file__,
    renamed={"EventTransport": "HubChannel", "InMemoryTransport": "InMemoryHubChannel"},
)
