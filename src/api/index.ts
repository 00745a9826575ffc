export { createApp, listen, HEALTH_PATH, type AppOptions, type ApiServer } from './app.js';
export { mapErrors, statusForError, type ErrorBody, type ErrorMapping, type ErrorStatusOf } from './errors.js';
