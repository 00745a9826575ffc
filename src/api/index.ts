export { createApp, listen, type AppOptions, type ApiServer } from './app.js';
export { ErrorCode, errorBody, mapErrors, statusForError, type ErrorBody, type ErrorMapping, type ErrorStatusOf } from './replies.js';
