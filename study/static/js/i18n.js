// Participant texts in the study's language. The page carries its translations as JSON in
// <body data-strings> (study/i18n.py): t("English text", {name: value}) gives the translation,
// or the English when there is none, with each {name} replaced by its value. Texts passed to t
// are collected from these files for the catalogs (babel.cfg), so t takes string literals only.

const STRINGS = (() => {
  try {
    return JSON.parse(document.body.dataset.strings || "{}");
  } catch {
    return {};
  }
})();

export function t(text, values = {}) {
  const said = Object.prototype.hasOwnProperty.call(STRINGS, text) ? STRINGS[text] : text;
  return said.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
