// The ES module entry point: the same objects as the CommonJS one (index.js).
import cjs from './index.js';

export const {
  Engine,
  Diff,
  version,
  statusName,
  libraryPath,
  Status,
  PresenceError,
  InvalidInputError,
  InvalidMetaError,
  TooLongError,
  ConfigError,
  AlreadyTrackedError,
  NotTrackedError,
  LimitReachedError,
  ResourceError,
  PanicError,
  EngineClosedError,
  NoClusterError,
  RejectedError,
} = cjs;

export default cjs;
