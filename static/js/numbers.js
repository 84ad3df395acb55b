/* The one number format in the browser: the same rule as accounts/numbers.py, given by the
 * server as a config ({decimal, group, percent, billions, days, money: {prefix, suffix,
 * digits}}, from accounts.numbers.js_config), so a chart's tooltip reads exactly as the table
 * beside it. Exposed as window.MorososNumbers.
 */
(function () {
  "use strict";

  // Half up, like Python's ROUND_HALF_UP (toFixed rounds binary halves down: 1.005 → "1.00").
  function fixed(value, places) {
    var factor = Math.pow(10, places);
    var rounded = Math.round((Math.abs(value) + Number.EPSILON) * factor) / factor;
    return rounded.toFixed(places);
  }

  function number(cfg, value, places) {
    if (value === null || value === undefined || isNaN(value)) return "";
    places = places === undefined ? 2 : places;
    var text = fixed(value, places);
    var parts = text.split(".");
    var whole = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, "\u0000");
    text = whole.split("\u0000").join(cfg.group) + (parts.length > 1 ? cfg.decimal + parts[1] : "");
    var negative = value < 0 && Number(fixed(value, places)) !== 0;
    return (negative ? "-" : "") + text;
  }

  function money(cfg, value) {
    if (value === null || value === undefined || isNaN(value)) return "";
    var m = cfg.money;
    var text = number(cfg, Math.abs(value), m.digits);
    var negative = value < 0 && Number(fixed(value, m.digits)) !== 0;
    return (negative ? "-" : "") + m.prefix + text + m.suffix;
  }

  function percent(cfg, value, places) {
    var text = number(cfg, value, places === undefined ? 1 : places);
    return text ? text + cfg.percent : "";
  }

  function days(cfg, value, places) {
    var text = number(cfg, value, places === undefined ? 1 : places);
    return text ? cfg.days.replace("%(n)s", text) : "";
  }

  // Axis labels without cents: 999 → "999", 1,000 → "1 k", 1,200,000 → "1.2 M".
  function abbreviate(cfg, value) {
    if (value === null || value === undefined || isNaN(value)) return "";
    var sign = value < 0 ? "-" : "";
    var magnitude = Math.abs(value);
    if (Math.round(magnitude) < 1000) {
      var whole = Math.round(magnitude);
      return (whole ? sign : "") + number(cfg, whole, 0);
    }
    var scales = [[1e3, "k"], [1e6, "M"], [1e9, cfg.billions]];
    for (var i = 0; i < scales.length; i++) {
      var scaled = Number(fixed(magnitude / scales[i][0], 1));
      if (scaled < 1000 || i === scales.length - 1) {
        return sign + number(cfg, scaled, scaled % 1 === 0 ? 0 : 1) + " " + scales[i][1];
      }
    }
    return "";
  }

  window.MorososNumbers = {
    number: number, money: money, percent: percent, days: days, abbreviate: abbreviate,
  };
})();
