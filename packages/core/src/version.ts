/** The PEFT.js library version written into adapter files (kept equal to @peftjs/core's package.json by a test). */
export const PEFTJS_VERSION = '0.1.0';
