/**
 * The pages' only way to make elements: text goes in through textContent, attributes through
 * setAttribute, never through innerHTML, so chat text, uids, gift data and room names stay text.
 */
export interface ElementSpec {
  class?: string;
  text?: string;
  attrs?: Record<string, string>;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, spec: ElementSpec = {}, children: Array<Node | string | null> = [],
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (spec.class) element.className = spec.class;
  if (spec.text !== undefined) element.textContent = spec.text;
  if (spec.attrs) for (const [name, value] of Object.entries(spec.attrs)) element.setAttribute(name, value);
  for (const child of children) if (child !== null) element.append(child);
  return element;
}

/** The element with this id, which the page's HTML must have. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

/** Sets a status line's text and tone (`error`, `info` or none). */
export function setStatus(element: HTMLElement, text: string, tone: 'error' | 'info' | '' = ''): void {
  element.textContent = text;
  if (tone) element.dataset.tone = tone;
  else delete element.dataset.tone;
}
