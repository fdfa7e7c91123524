/**
 * HTML that is escaped by construction: the {@link html} template tag escapes every value put
 * into it unless the value is already {@link Html} (the output of another `html` template), so a
 * memo, an order reference or a query parameter can never become markup.
 */

/** A fragment of markup that is safe to send: built only by {@link html}. */
export class Html {
  constructor(readonly text: string) {}
}

/** What a template may hold: markup, text to escape, or nothing (`null`, `undefined`, `false`). */
export type HtmlPart = Html | string | number | null | undefined | false | readonly HtmlPart[];

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for use in an element or a quoted attribute. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

function render(part: HtmlPart): string {
  if (part === null || part === undefined || part === false) return "";
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(render).join("");
  return escapeHtml(String(part));
}

/**
 * The template tag for all markup: `html\`<td>${memo}</td>\`` escapes `memo`; a nested `html`
 * fragment is inserted as it is, an array item by item.
 */
export function html(strings: TemplateStringsArray, ...values: HtmlPart[]): Html {
  let out = strings[0];
  values.forEach((value, i) => (out += render(value) + strings[i + 1]));
  return new Html(out);
}
