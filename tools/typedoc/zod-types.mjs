// TypeDoc plugin (typedoc.base.json) for zod option schemas, whose `.describe(…)` text is each option's one
// description:
// - a property whose declaration is a schema field (`lr: z.number().default(1e-3).describe('peak learning rate')`)
//   gets that text as its doc comment wherever the type shows up (inferred option types, `z.input<…>`), so
//   descriptions are written once, in the schema;
// - zod types are shown by name, without their type arguments, instead of expanding `ZodObject<{ … }>` into
//   anonymous members (the fields are listed with types and defaults in docs/guides/methods.md).
import { Comment, Converter, ReferenceType, ReflectionType } from 'typedoc';
import ts from 'typescript';

/** The string a `.describe('…')` call in `expression`'s call chain passes, if any. */
function describedText(expression) {
  for (let node = expression; node && ts.isCallExpression(node); node = node.expression.expression) {
    const callee = node.expression;
    if (!ts.isPropertyAccessExpression(callee)) return undefined;
    if (callee.name.text === 'describe' && node.arguments.length === 1) return literalText(node.arguments[0]);
  }
  return undefined;
}

/** A string literal, or a `+` concatenation of them. */
function literalText(node) {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const left = literalText(node.left);
    const right = literalText(node.right);
    return left !== undefined && right !== undefined ? left + right : undefined;
  }
  return undefined;
}

/** Every reflection declared inside `type` (object types in type arguments, unions, functions …). */
function declarationsIn(type, found) {
  if (!type || typeof type !== 'object') return found;
  if (type instanceof ReflectionType) {
    found.push(type.declaration);
    return found;
  }
  for (const value of Object.values(type)) {
    if (Array.isArray(value)) for (const item of value) declarationsIn(item, found);
    else if (value && typeof value === 'object' && 'type' in value) declarationsIn(value, found);
  }
  return found;
}

/** Drops the type arguments of zod references in `type`, removing the reflections they declared. */
function simplify(type, project) {
  if (!type || typeof type !== 'object') return;
  if (type instanceof ReferenceType && type.package === 'zod' && type.typeArguments) {
    for (const argument of type.typeArguments) {
      for (const declaration of declarationsIn(argument, [])) project.removeReflection(declaration);
    }
    type.typeArguments = undefined;
    return;
  }
  for (const value of Object.values(type)) {
    if (Array.isArray(value)) for (const item of value) simplify(item, project);
    else if (value && typeof value === 'object' && 'type' in value) simplify(value, project);
  }
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    if (reflection.hasComment()) return;
    const symbol = context.getSymbolFromReflection(reflection);
    for (const declaration of symbol?.declarations ?? []) {
      if (!ts.isPropertyAssignment(declaration)) continue;
      const text = describedText(declaration.initializer);
      if (text !== undefined) {
        reflection.comment = new Comment([
          { kind: 'text', text: `${text[0]?.toUpperCase()}${text.slice(1)}.` },
        ]);
        return;
      }
    }
  });
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project;
    for (const reflection of Object.values(project.reflections)) {
      simplify(reflection.type, project);
      for (const signature of reflection.signatures ?? []) {
        simplify(signature.type, project);
        for (const parameter of signature.parameters ?? []) simplify(parameter.type, project);
      }
    }
  });
}
