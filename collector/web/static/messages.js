// The server's sentences (alert details, fault reasons) in the page's language: the same catalogue
// and the same rules as collector/messages.py, which renders the bulletin (a test runs both over
// the same messages). A message is {key, params}; a parameter is text, a number, a nested message
// or a list of those; {where} is the room as the caller names it.
"use strict";

(function (root) {
  // `catalogue`: {messages: {key: template}, list_separator}; `stamp(iso)`: how a time reads.
  function renderer(catalogue, stamp) {
    // The sentence, or null when this page cannot say it (a newer collector's key, a missing
    // parameter): the caller shows the server's English text instead.
    function say(message, where) {
      if (!message || typeof message !== "object") return null;
      if (message.key === "time") return message.params && message.params.at ? stamp(message.params.at) : null;
      const template = catalogue.messages[message.key];
      if (template === undefined) return null;
      const params = message.params || {};
      let complete = true;
      const text = template.replace(/\{([a-z_]+)\}/g, (whole, name) => {
        if (name === "where") return where ?? "";
        if (!Object.prototype.hasOwnProperty.call(params, name)) {
          complete = false;
          return whole;
        }
        return value(params[name]);
      });
      return complete ? text : null;
    }

    function value(item) {
      if (Array.isArray(item)) return item.map(value).join(catalogue.list_separator);
      if (item && typeof item === "object") {
        return say(item, "") ?? String(item.params?.text ?? item.key);
      }
      if (typeof item === "number" && !Number.isInteger(item)) return String(Number(item.toPrecision(6)));
      return String(item);
    }

    return say;
  }

  root.CustosMessages = { renderer };
})(globalThis);
