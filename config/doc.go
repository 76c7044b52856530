// Package config reads scoreproxy's YAML file: the listen address, a writer
// section whose keys are vmanomaly's VmWriter keys verbatim (so a pasted
// vmanomaly writer: block loads as is), routing, limits and server timeouts.
//
// It owns the schema, the defaults and the validation, and reports every
// problem at once with the full key path and what to write instead; it has no
// behaviour of its own. Parse and Load are the only supported way to build a Config.
package config
