// Building elements: el('td', {class: 'num', 'data-col': 'loss'}, text, child...).

/** A new `tag` with `attrs` (`class`, `data-*` attributes, other keys as properties) and children. */
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}
