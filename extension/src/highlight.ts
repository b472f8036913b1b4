import { RangeSetBuilder, type Extension, type Text } from '@codemirror/state';
import {
  Decoration,
  type DecorationSet,
  EditorView,
  ViewPlugin,
  type ViewUpdate
} from '@codemirror/view';

import { type TomlState, tokenizeLine } from './toml';

/** A cell whose first line is this magic has a TOML body. */
const MAGIC = /^\s*%%sft_config(?:\s|$)/;

const lineDecoration = Decoration.line({ class: 'sl-toml-line' });
const marks = new Map<string, Decoration>();
function mark(kind: string): Decoration {
  let deco = marks.get(kind);
  if (!deco) {
    deco = Decoration.mark({ class: `sl-toml-${kind}` });
    marks.set(kind, deco);
  }
  return deco;
}

/** TOML decorations for lines 2..n of a `%%sft_config` cell; none for any other text. */
export function tomlDecorations(doc: Text): DecorationSet {
  const builder = new RangeSetBuilder<Decoration>();
  if (doc.lines < 2 || !MAGIC.test(doc.line(1).text)) {
    return builder.finish();
  }
  let state: TomlState = null;
  for (let n = 2; n <= doc.lines; n++) {
    const line = doc.line(n);
    builder.add(line.from, line.from, lineDecoration);
    const result = tokenizeLine(line.text, state);
    for (const token of result.tokens) {
      builder.add(line.from + token.from, line.from + token.to, mark(token.kind));
    }
    state = result.state;
  }
  return builder.finish();
}

/** The CodeMirror 6 extension: recomputes the decorations when the text changes. */
export function sftConfigToml(): Extension {
  return ViewPlugin.fromClass(
    class {
      decorations: DecorationSet;
      constructor(view: EditorView) {
        this.decorations = tomlDecorations(view.state.doc);
      }
      update(update: ViewUpdate): void {
        if (update.docChanged) {
          this.decorations = tomlDecorations(update.state.doc);
        }
      }
    },
    { decorations: plugin => plugin.decorations }
  );
}
