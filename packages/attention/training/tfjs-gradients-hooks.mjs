// Node module hooks for the training script: tfjs-core's ESM build (dist/*.js) imports its own
// files without extensions, which bundlers accept and Node does not. Only the gradient
// registrations (dist/register_all_gradients.js, absent from tfjs-core's Node bundle) are loaded
// through it; the resolve hook adds `.js` to extensionless relative imports inside tfjs-core.
export async function resolve(specifier, context, next) {
  const inCore = context.parentURL?.includes('/@tensorflow/tfjs-core/dist/');
  if (inCore && specifier.startsWith('.') && !/\.[cm]?js$/.test(specifier)) {
    return next(`${specifier}.js`, context);
  }
  return next(specifier, context);
}
