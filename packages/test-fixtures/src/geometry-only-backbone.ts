import {
  HEAD_OWNER,
  ParameterRegistry,
  type PeftBackbone,
  type VitConfig,
  type VitGeometry,
  tf,
  vitGeometry,
} from '@peftjs/core';

/**
 * A backbone with a real ViT geometry but only a (zero) head: plugins can be set up on ViT-B/16 geometry to count
 * their parameters without allocating 86 M backbone weights. It cannot run a forward pass.
 */
export class GeometryOnlyBackbone implements PeftBackbone {
  readonly registry = new ParameterRegistry();
  readonly geometry: VitGeometry;

  constructor(readonly config: VitConfig) {
    this.geometry = vitGeometry(config);
    this.resetHead(config.numClasses);
  }

  forward(): never {
    throw new Error('GeometryOnlyBackbone has no weights to run');
  }

  resetHead(numClasses: number): void {
    this.registry.dispose((e) => e.owner === HEAD_OWNER);
    this.registry.register('head.weight', tf.zeros([this.config.dim, numClasses]), { owner: HEAD_OWNER });
    this.registry.register('head.bias', tf.zeros([numClasses]), { owner: HEAD_OWNER });
  }
}
