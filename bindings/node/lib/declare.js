'use strict';

// declaredOnFirstUse: the C functions that the JS calls declare themselves, on first use.

// Functions newer than those native() declares are declared on first use, from the
// library native() loaded: a library built before them still serves every other call,
// and the first call of one names what it lacks.

function declareLater(n, decls) {
  const lib = n.koffi.load(n.path);
  const fns = {};
  for (const [key, decl] of Object.entries(decls)) {
    try {
      fns[key] = lib.func(decl);
    } catch (err) {
      const name = /(presence_\w+)\(/.exec(decl)[1];
      throw new Error(
        `presence-engine: ${n.path} has no ${name}: it was built before this package's functions were added; ` +
          `rebuild it (cargo build --release --lib) (${err.message})`
      );
    }
  }
  return fns;
}

/** (n) => the functions of `decls`, declared at the first call and the same table after. */
function declaredOnFirstUse(decls) {
  let fns = null;
  return (n) => {
    if (fns === null) fns = declareLater(n, decls);
    return fns;
  };
}

module.exports = { declaredOnFirstUse };
