export { createApp, listen, type AppOptions, type ApiServer } from './app.js';
export { errorBody, mapErrors, statusForError, type ErrorBody, type ErrorMapping, type ErrorStatusOf } from './replies.js';
