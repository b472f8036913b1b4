import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { EditorExtensionRegistry, IEditorExtensionRegistry } from '@jupyterlab/codemirror';

import { sftConfigToml } from './highlight';

/**
 * Highlights the body of `%%sft_config` cells as TOML. The first line (the magic) keeps the
 * notebook's Python highlighting; the rest gets `sl-toml-*` classes (see style/base.css).
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'synth-lab-sft-toml:plugin',
  description: 'TOML highlighting for the body of %%sft_config cells.',
  autoStart: true,
  requires: [IEditorExtensionRegistry],
  activate: (_app: JupyterFrontEnd, registry: IEditorExtensionRegistry): void => {
    const extension = EditorExtensionRegistry.createImmutableExtension(sftConfigToml());
    registry.addExtension({
      name: 'synth-lab:sft-config-toml',
      // Inline editors are notebook and console cells; file editors are left alone.
      factory: options => (options.inline ? extension : null)
    });
  }
};

export default plugin;
