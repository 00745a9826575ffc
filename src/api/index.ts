export { createApp, listen, type AppOptions, type ApiServer } from './app.js';
export { mapErrors, statusForError, type ErrorMapping, type ErrorStatusOf } from './replies.js';
